"""MariaDB / MySQL dumps with mariadb-dump / mysqldump.

Work in progress: registers nothing yet."""
