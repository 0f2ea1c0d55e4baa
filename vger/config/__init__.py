"""Configuration: locate -> expand ``${VAR}`` -> parse -> validate -> frozen model.

Glossary:

raw config
    :class:`RawConfig`, the file after ``${VAR}`` expansion and YAML parsing, not
    yet validated. It exists because ``plugins.disable`` must be read before
    plugins load, and the schema depends on which plugins loaded.
core schema
    ``schemas/config.schema.json``: every core key with a description, default
    and example. It drives validation, defaults and the starter file.
assembled schema
    The core schema plus, for each installed plugin, an ``if``/``then`` branch
    with the plugin's ``options_schema`` (:func:`assemble_schema`).
selector
    The key that picks a plugin inside a block: ``compression.algorithm``,
    ``chunker.algorithm``, ``encryption.mode``, ``dumps[].type``,
    ``monitoring[].type``, and the url scheme of a repository.
effective config
    The model (:class:`Config`): defaults filled, top-level settings folded
    into each repository and source, local paths absolute.
problem
    One validation finding: ``<file>:<line>: <key path>: expected ..., found ...``.

Typical use (what the CLI does)::

    config, registry = load_config(explicit_path, lambda disabled: load_plugins(disabled))
"""

from vger.config.effective import effective_config_text, mask_secrets
from vger.config.model import (
    ChunkerConfig,
    CompressionConfig,
    Config,
    EncryptionConfig,
    LimitsConfig,
    RepositoryConfig,
    RetentionConfig,
    SourceConfig,
    repository_scheme,
)
from vger.config.problems import ConfigValidationError, Problem
from vger.config.reader import RawConfig, disabled_plugins, locate_config, read_config
from vger.config.schema import assemble_schema
from vger.config.starter import starter_config
from vger.config.validate import load_config, validate_config

__all__ = [
    "ChunkerConfig",
    "CompressionConfig",
    "Config",
    "ConfigValidationError",
    "EncryptionConfig",
    "LimitsConfig",
    "Problem",
    "RawConfig",
    "RepositoryConfig",
    "RetentionConfig",
    "SourceConfig",
    "assemble_schema",
    "disabled_plugins",
    "effective_config_text",
    "load_config",
    "locate_config",
    "mask_secrets",
    "read_config",
    "repository_scheme",
    "starter_config",
    "validate_config",
]
