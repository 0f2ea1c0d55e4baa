"""Validation: schema first, then cross-key rules, then the frozen model.

Cross-key rules only run on a document that passed the schema, so they can
trust shapes and types; a user fixing errors sees the shape problems first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from vger.config.build import Builder
from vger.config.effective import mask_secrets
from vger.config.memo import ValidationMemo, default_memo, digest
from vger.config.model import Config
from vger.config.problems import ConfigValidationError, ErrorTranslator
from vger.config.reader import RawConfig, disabled_plugins, locate_config, read_config
from vger.config.schema import assemble_schema, core_schema
from vger.config.semantics import check
from vger.pluginmanager import Registry


def validate_config(raw: RawConfig, registry: Registry, memo: ValidationMemo | None = None) -> Config:
    """The frozen model of ``raw``, or :class:`ConfigValidationError` (a ConfigError) listing each problem.

    With ``memo``, a document that passed the schema before (same text, same
    schema, same vger) skips the schema step; the cross-key rules, which may
    look at the machine (paths, environment), always run.
    """
    schema = assemble_schema(registry, memo)
    # A digest of a document holding a passphrase, a token or a url password
    # would be a fast, unsalted hash of that secret on disk, open to offline
    # guessing that Argon2id exists to prevent: such configs are validated in
    # full every time (plugin schemas are still remembered).
    remember = memo is not None and mask_secrets(raw.data) == raw.data
    key = digest("config", raw.data, schema) if remember else ""
    problems = []
    if not remember or memo is None or key not in memo:
        from jsonschema import Draft202012Validator

        translator = ErrorTranslator(schema, registry, raw.locations)
        problems = translator.problems(Draft202012Validator(schema).iter_errors(raw.data))
    if not problems:
        problems = [replace(p, line=raw.locations.line_of(p.path)) for p in check(raw.data, core_schema())]
    if problems:
        raise ConfigValidationError(raw.path, problems)
    config = Builder(raw.path, raw.data, schema).build()
    if memo is not None:
        if remember:
            memo.add(key)
        memo.save()
    return config


def load_config(
    explicit: str | None, registry_factory: Callable[[list[str]], Registry]
) -> tuple[Config, Registry]:
    """Locate, read, load plugins (minus ``plugins.disable``), validate.

    The registry is built between reading and validating because the file
    decides which plugins are disabled, and the plugins decide the schema.
    """
    raw = read_config(locate_config(explicit))
    registry = registry_factory(disabled_plugins(raw))
    return validate_config(raw, registry, default_memo()), registry
