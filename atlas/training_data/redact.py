"""Redaction at export: secrets and personal data replaced by consistent placeholders.

A :class:`Redactor` walks a record (an ``AtlasSessionTrace.to_dict()``) and
rewrites every string at any depth, dict values and list items alike; dict
keys, numbers and booleans are left alone. A string that holds JSON text is
plain text here: the rules match inside it. The same value always becomes the
same placeholder within one redactor (one export), ``<EMAIL_1>``,
``<EMAIL_2>``, ... numbered per rule in order of first sight, so a model
trained on the output still sees that two steps talk about the same address.

Detection is in two stages. A coarse trigger, one RE2 automaton (Google's
``google-re2``: linear time, hundreds of MB/s) run over each encoded JSONL
line, says whether a record can hold anything at all; most records cannot,
and go out as encoded. The records it flags are walked, and their strings
matched by precompiled Python expressions, one alternation for all the
built-in rules, with validators where a pattern alone would be wrong too
often: :mod:`ipaddress` for IP addresses and the Luhn check for card
numbers. Every built-in match contains a trigger match, also in JSON-escaped
text, so the trigger never hides one. ``docs/redaction.md`` says why these
libraries, and what each rule matches.

:attr:`Redactor.report` counts the replacements per rule and per field path
(``steps[].trace``: list indexes collapsed to ``[]``).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import yaml

try:  # the fast trigger; without it every record is walked (same output, slower)
    import re2 as _re2  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - a dependency, but not one to fail over
    _re2 = None

from atlas.errors import ConfigError

__all__ = ["BUILTIN_RULES", "RedactionRule", "Redactor"]


def _luhn(digits: str) -> bool:
    """The Luhn checksum of a string of digits holds."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card(value: str) -> bool:
    digits = value.replace(" ", "").replace("-", "")
    return 13 <= len(digits) <= 19 and _luhn(digits)


def _ip(value: str) -> bool:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    # "::" and the like are more often code than addresses.
    return not (address.version == 6 and address.is_unspecified)


@dataclass(frozen=True)
class RedactionRule:
    """One rule: ``pattern`` finds candidates, ``check`` (if any) confirms them.

    ``secret`` names the group holding the value to replace when the match
    keeps context around it (``Bearer <token>``, a URL's password); without
    it the whole match is replaced. ``placeholder`` is the token's prefix:
    ``EMAIL`` gives ``<EMAIL_1>``.
    """

    name: str
    pattern: str
    placeholder: str
    check: Callable[[str], bool] | None = None
    secret: str | None = None


# Order matters where two rules could match at the same place: the first wins.
BUILTIN_RULES: tuple[RedactionRule, ...] = (
    RedactionRule(
        "private_key",
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?"
        r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----",
        "PRIVATE_KEY",
    ),
    RedactionRule(
        "url_password",
        # scheme://user:PASSWORD@ — only the password goes; not a placeholder already.
        r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@<>\"']+:(?P<url_password_value>(?!<[A-Z0-9_]+_\d+>@)[^\s@/\"']+)@",
        "PASSWORD",
        secret="url_password_value",
    ),
    RedactionRule(
        "bearer_token",
        r"\b[Bb]earer[ \t]+(?P<bearer_token_value>[A-Za-z0-9\-._~+/]{8,}=*)",
        "BEARER_TOKEN",
        secret="bearer_token_value",
    ),
    RedactionRule(
        "jwt",
        r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}",
        "JWT",
    ),
    RedactionRule("aws_access_key", r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b", "AWS_KEY"),
    RedactionRule(
        "api_key",
        r"\b(?:sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}"
        r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}"
        r"|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,}"
        r"|glpat-[A-Za-z0-9_-]{20,}"
        r"|xox[baprs]-[A-Za-z0-9-]{10,}"
        r"|AIza[0-9A-Za-z_-]{35})",
        "API_KEY",
    ),
    RedactionRule(
        "email",
        r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b",
        "EMAIL",
    ),
    RedactionRule(
        "ip_address",
        r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)"
        r"|(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![\w:])"
        r"|(?<![\w:])(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?::"
        r"(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?(?![\w:])",
        "IP",
        check=_ip,
    ),
    RedactionRule(
        "card_number",
        # 13-19 digits, first 2-6 (the card networks), spaces or dashes between.
        r"(?<![\w.-])[2-6](?:[ -]?\d){12,18}(?!\w|-\w)",
        "CARD",
        check=_card,
    ),
    RedactionRule(
        "phone",
        # Not inside a longer token (a UUID's digit groups, a dotted number).
        r"(?<![\w+.-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}"
        r"(?![\w]|[.-]\w| \d)"
        r"|(?<![\w+])\+\d{8,15}(?!\w)",
        "PHONE",
    ),
)

# A superset of the built-in rules, run over JSON text: every match of a rule
# (decoded, or as orjson escapes it) contains a match of this pattern.
_TRIGGER = (
    rb"PRIVATE KEY-----"
    rb"|://[^\s/@]*@"
    rb"|[Bb]earer"
    rb"|eyJ"
    rb"|AKIA|ASIA|AGPA|AIDA|AROA"
    rb"|sk-|[srp]k_(?:live|test)_|gh[pousr]_|github_pat_|glpat-|xox[baprs]-|AIza"
    rb"|[A-Za-z0-9._%+-]@[A-Za-z0-9-]"
    rb"|\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}"
    rb"|::|(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]"
    # Cards and phones start after a character outside a token, which in JSON
    # text may also be an escape (\n, \u0001): JSON numbers rarely qualify.
    rb"|(?:^|[^\w.-]|\\[bfnrt]|\\u00[0-9a-fA-F]{2})[2-6](?:[ -]?\d){12,18}"
    rb"(?:$|[^\w-]|-$|-[^\w])"
    rb"|(?:^|[^\w+.-]|\\[bfnrt]|\\u00[0-9a-fA-F]{2})\d{2,4}[ .-]\d{3,4}[ .-]\d{3}"
    rb"|\(\d{2,4}\)[ .-]?\d{3,4}[ .-]\d{3}"
    rb"|\+\d{1,3}[ .-]?(?:\(\d{2,4}\)|\d{2,4}[ .-])\d{3}|\+\d{8}"
)

_BUILTIN_NAMES = frozenset(rule.name for rule in BUILTIN_RULES)
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
_PLACEHOLDER = re.compile(r"[A-Z][A-Z0-9_]*\Z")


def _combined(rules: Iterable[RedactionRule]) -> re.Pattern[str] | None:
    """One alternation of ``rules``, each in a group named after it (its match's ``lastgroup``)."""
    parts = [f"(?P<{rule.name}>{rule.pattern})" for rule in rules]
    # ASCII classes (\d, \w, \b), as the trigger's: no rule is meant for other digits.
    return re.compile("|".join(parts), re.ASCII) if parts else None


# Texts up to this length that held nothing to replace are remembered (at most
# _CLEAN_ENTRIES of them, then forgotten all at once), so a record's repeated
# values are searched once per export.
_CLEAN_LENGTH = 64
_CLEAN_ENTRIES = 100_000


class Redactor:
    """Redacts records, keeping placeholders consistent and counting what it replaced.

    Make one per export: the placeholder numbering and the report cover every
    record it has seen. Not thread-safe (an export redacts on one thread).
    """

    def __init__(self, rules: Iterable[RedactionRule] = BUILTIN_RULES):
        self.rules: tuple[RedactionRule, ...] = tuple(rules)
        builtin = [rule for rule in self.rules if rule.name in _BUILTIN_NAMES]
        custom = [rule for rule in self.rules if rule.name not in _BUILTIN_NAMES]
        self._by_name = {rule.name: rule for rule in self.rules}
        self._builtin = _combined(builtin)
        # Custom patterns run one by one, after the built-ins: their own groups
        # (and back-references) stay as the user wrote them.
        self._custom = [(rule, re.compile(rule.pattern)) for rule in custom]
        self._tokens: dict[str, dict[str, str]] = {rule.name: {} for rule in self.rules}
        # Short texts with nothing to replace (statuses, event types, names a record
        # repeats): a set lookup instead of another search.
        self._clean: set[str] = set()
        self._report: dict[str, dict[str, int]] = {}
        # Custom patterns are not covered by the trigger: then every string is scanned.
        self._trigger: Any = (
            _re2.compile(_TRIGGER) if _re2 is not None and not self._custom else None
        )
        self._trigger_text: Any = (
            _re2.compile(_TRIGGER.decode()) if self._trigger is not None else None
        )

    @classmethod
    def builtin(cls) -> Redactor:
        """A redactor with every built-in rule."""
        return cls(BUILTIN_RULES)

    @classmethod
    def from_config(cls, path: str | Path) -> Redactor:
        """The built-ins, minus ``disable:``, plus ``rules:`` from a YAML file.

        ::

            disable: [ip_address]
            rules:
              - name: employee_id
                pattern: 'EMP-\\d{6}'
                placeholder: EMPLOYEE   # optional; default: the name in capitals

        Raises :class:`~atlas.errors.ConfigError`, one line naming the file
        (and the rule), when the file cannot be read or a rule is wrong.
        """
        where = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Cannot read redaction config {where}: {exc}.") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"Redaction config {where} is not valid YAML{at}.") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(
                f"Redaction config {where} must be a mapping with 'rules' and/or 'disable'."
            )
        unknown = sorted(str(key) for key in data if key not in ("rules", "disable"))
        if unknown:
            raise ConfigError(
                f"Redaction config {where}: unknown key(s) {', '.join(unknown)}; "
                "expected 'rules' and 'disable'."
            )
        disable = data.get("disable") or []
        if not isinstance(disable, list) or not all(isinstance(n, str) for n in disable):
            raise ConfigError(f"Redaction config {where}: 'disable' must be a list of rule names.")
        for name in disable:
            if name not in _BUILTIN_NAMES:
                raise ConfigError(
                    f"Redaction config {where}: cannot disable {name!r}: not a built-in rule "
                    f"(built-ins: {', '.join(sorted(_BUILTIN_NAMES))})."
                )
        rules = [rule for rule in BUILTIN_RULES if rule.name not in disable]
        entries = data.get("rules") or []
        if not isinstance(entries, list):
            raise ConfigError(f"Redaction config {where}: 'rules' must be a list.")
        seen = {rule.name for rule in rules}
        for index, entry in enumerate(entries, 1):
            rules.append(_custom_rule(entry, index, where, seen))
            seen.add(rules[-1].name)
        return cls(rules)

    @property
    def report(self) -> dict[str, dict[str, int]]:
        """Replacements so far: rule name -> field path -> count (a JSON-ready copy)."""
        return {rule: dict(paths) for rule, paths in self._report.items()}

    @property
    def total(self) -> int:
        """How many values were replaced so far, all rules together."""
        return sum(sum(paths.values()) for paths in self._report.values())

    def redact_line(
        self, record: dict[str, Any], line: bytes, encode: Callable[[dict[str, Any]], bytes]
    ) -> bytes:
        """``line`` (``record`` encoded by ``encode``) redacted: the export's fast path.

        A line the trigger finds nothing in is returned as it is, unparsed;
        otherwise the record is redacted and encoded again (or, when nothing
        was replaced after all, the line is returned).
        """
        if self._trigger is not None and self._trigger.search(line) is None:
            return line
        redacted = self.redact_record(record)
        return line if redacted is record else encode(redacted)

    def redact_text(self, text: str, path: str = "") -> str:
        """``text`` with every match replaced; counted under ``path``."""
        short = len(text) <= _CLEAN_LENGTH
        if short and text in self._clean:
            return text
        if self._trigger_text is None or self._trigger_text.search(text) is not None:
            new = text
            if self._builtin is not None:
                new = self._builtin.sub(lambda m: self._replace(m, path), new)
            for rule, compiled in self._custom:
                new = compiled.sub(lambda m, r=rule: self._token(r, m[0], path), new)  # type: ignore[misc]
            if new != text:
                return new
        if short:
            # Nothing to replace: the same text anywhere later is looked up, not searched.
            if len(self._clean) >= _CLEAN_ENTRIES:
                self._clean.clear()
            self._clean.add(text)
        return text

    def redact_record(self, record: dict[str, Any]) -> dict[str, Any]:
        """A redacted copy of ``record``; the input is never modified.

        Containers without anything to replace are shared with the input
        rather than copied, which keeps the cost near that of the scan.
        """
        result = self._walk(record, "")
        return result  # type: ignore[no-any-return]

    def _walk(self, value: Any, path: str) -> Any:
        if isinstance(value, str):
            return self.redact_text(value, path)
        if isinstance(value, orjson.Fragment):
            # JSON text the export passes through (the events): read exactly
            # (Decimal for every fraction), kept as it was unless something changed.
            decoded = json.loads(orjson.dumps(value), parse_float=Decimal)
            new = self._walk(decoded, path)
            return value if new is decoded else new
        if isinstance(value, dict):
            out: dict[Any, Any] | None = None
            for key, item in value.items():
                if isinstance(item, (str, dict, list, orjson.Fragment)):
                    new = self._walk(item, f"{path}.{key}" if path else str(key))
                    if new is not item:
                        if out is None:
                            out = dict(value)
                        out[key] = new
            return value if out is None else out
        if isinstance(value, list):
            child = f"{path}[]"
            items: list[Any] | None = None
            for index, item in enumerate(value):
                if isinstance(item, (str, dict, list, orjson.Fragment)):
                    new = self._walk(item, child)
                    if new is not item:
                        if items is None:
                            items = list(value)
                        items[index] = new
            return value if items is None else items
        return value

    def _replace(self, match: re.Match[str], path: str) -> str:
        name = match.lastgroup
        assert name is not None
        rule = self._by_name[name]
        whole = match[0]
        if rule.secret is None:
            if rule.check is not None and not rule.check(whole):
                return whole
            return self._token(rule, whole, path)
        secret = match[rule.secret]
        start, end = match.span(rule.secret)
        base = match.start()
        token = self._token(rule, secret, path)
        return whole[: start - base] + token + whole[end - base :]

    def _token(self, rule: RedactionRule, value: str, path: str) -> str:
        tokens = self._tokens[rule.name]
        token = tokens.get(value)
        if token is None:
            token = tokens[value] = f"<{rule.placeholder}_{len(tokens) + 1}>"
        counts = self._report.setdefault(rule.name, {})
        counts[path] = counts.get(path, 0) + 1
        return token


def _custom_rule(entry: Any, index: int, where: str, seen: set[str]) -> RedactionRule:
    """A ``rules:`` entry as a :class:`RedactionRule`, or a one-line :class:`ConfigError`."""
    if not isinstance(entry, dict):
        raise ConfigError(f"Redaction config {where}: rule {index} must be a mapping.")
    name = entry.get("name")
    label = f"rule {name!r}" if isinstance(name, str) else f"rule {index}"
    unknown = sorted(str(key) for key in entry if key not in ("name", "pattern", "placeholder"))
    if unknown:
        raise ConfigError(
            f"Redaction config {where}: {label} has unknown key(s) {', '.join(unknown)}; "
            "expected name, pattern, placeholder."
        )
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"Redaction config {where}: {label} needs a 'name' of lower-case letters, "
            "digits and underscores."
        )
    if name in seen:
        raise ConfigError(f"Redaction config {where}: {label}: the name is already taken.")
    pattern = entry.get("pattern")
    if not isinstance(pattern, str) or not pattern:
        raise ConfigError(f"Redaction config {where}: {label} needs a 'pattern' (a regex).")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(
            f"Redaction config {where}: {label} has an invalid pattern: {exc}."
        ) from None
    if compiled.match("") is not None:
        raise ConfigError(
            f"Redaction config {where}: {label}: the pattern matches the empty string."
        )
    placeholder = entry.get("placeholder", name.upper())
    if not isinstance(placeholder, str) or not _PLACEHOLDER.match(placeholder):
        raise ConfigError(
            f"Redaction config {where}: {label} has a bad 'placeholder': use capital letters, "
            "digits and underscores (e.g. EMPLOYEE)."
        )
    return RedactionRule(name, pattern, placeholder)
