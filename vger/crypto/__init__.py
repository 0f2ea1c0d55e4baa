"""Keys, object envelopes, keyed chunk ids and the `auto` cipher choice.

Glossary:

master key
    64 random bytes made at ``vger init``: a 32-byte encryption key and a 32-byte
    chunk-id key. Never stored in clear; wrapped under a passphrase-derived key.
key file
    ``keys/repokey``: the master key plus the repository id and cipher name,
    encrypted with AES-256-GCM under an Argon2id key from the passphrase. Because
    the cipher name travels inside it, an attacker who edits the clear ``config``
    cannot switch a repository to a weaker cipher.
envelope
    ``[1 byte type][12 byte nonce][ciphertext + 16 byte tag]``; the type byte is
    associated data, so an object of one type is never accepted as another.
"""
