"""Assemble and check the ask-cli v2 skill package.

The sources are ``skill.json`` (the manifest) and ``skill/interaction_model/``: ``base.json`` is
the interaction model every locale shares (ask-cli format, with hand-picked values for the
``STORY_KEYWORD`` slot type), and ``<locale>.json`` adds that locale's own sample utterances,
``{"samples": {"<intent>": ["..."]}}``, the way ``skill/locales`` layers strings.
:func:`write_interaction_models` renders them to ``interaction_models/<locale>.json`` (checked in,
read by the simulators and tests; a test fails when they drift from the sources), and
``build_skill_package`` writes what ``ask deploy`` reads::

    skill-package/skill.json
    skill-package/interactionModels/custom/<locale>.json

with ``STORY_KEYWORD`` extended by the keywords of the story catalogue
(``db.store.keyword_catalogue``), so a keyword the children can ask for is also one Alexa can
recognise. The endpoint in ``skill.json`` is a placeholder,
``https://bedtime-stories.example.com/alexa``: pass the real HTTPS URL of the web service (or a
Lambda ARN) with ``--endpoint``; the ask-cli lambda deployer replaces it with the function's ARN
on ``ask deploy``.
"""

from __future__ import annotations

import compileall
import copy
import json
import py_compile
import re
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from skill.i18n import LOCALES
from skill.intents import KEYWORD_TYPE

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = PROJECT_ROOT / "interaction_models"
MANIFEST_PATH = PROJECT_ROOT / "skill.json"
MODEL_SOURCES_DIR = Path(__file__).resolve().parent / "interaction_model"
PLACEHOLDER_ENDPOINT = "https://bedtime-stories.example.com/alexa"
LAMBDA_DIR = PROJECT_ROOT / "lambda"
# What the Lambda shim imports at run time; the generator (torch) never ships to Lambda.
LAMBDA_PACKAGES = ("settings", "skill", "db", "safety", "migrations")

MAX_SAMPLE_LENGTH = 200
MAX_VALUE_LENGTH = 140
# Sample utterances: letters, digits, spaces, apostrophes, periods (abbreviations), hyphens, slots.
_SAMPLE_TEXT = re.compile(r"^[a-z0-9' .\-]+$")
_SLOT_REF = re.compile(r"\{([^{}|]+)\}")
_VALUE_JUNK = re.compile(r"[^a-z0-9' .\-]+")


class SkillPackageError(ValueError):
    """The skill package sources are inconsistent; the message lists every problem."""


def load_json(path: Path) -> dict[str, Any]:
    """Read one JSON file."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def load_seed_model(locale: str, models_dir: Path = MODELS_DIR) -> dict[str, Any]:
    """The checked-in interaction model of ``locale``."""
    return load_json(Path(models_dir) / f"{locale}.json")


def render_interaction_model(locale: str, sources_dir: Path = MODEL_SOURCES_DIR) -> dict[str, Any]:
    """``base.json`` plus the sample utterances ``<locale>.json`` adds (when it exists)."""
    model = load_json(Path(sources_dir) / "base.json")
    override_path = Path(sources_dir) / f"{locale}.json"
    if not override_path.exists():
        return model
    override = load_json(override_path)
    unknown = set(override) - {"samples"}
    if unknown:
        raise SkillPackageError(f"{override_path}: unknown keys {sorted(unknown)}; only samples")
    intents = {intent["name"]: intent for intent in language_model(model)["intents"]}
    for name, samples in override["samples"].items():
        if name not in intents:
            raise SkillPackageError(f"{override_path}: {name} is not an intent of base.json")
        intents[name].setdefault("samples", []).extend(samples)
    return model


def write_interaction_models(
    models_dir: Path = MODELS_DIR,
    sources_dir: Path = MODEL_SOURCES_DIR,
    locales: Sequence[str] = LOCALES,
) -> list[Path]:
    """Render every locale's interaction model into ``models_dir``; return the files written."""
    sources = Path(sources_dir)
    extra = sorted(
        path.stem
        for path in sources.glob("*.json")
        if path.stem != "base" and path.stem not in locales
    )
    if extra:
        raise SkillPackageError(f"{sources_dir}: overrides for unpublished locales {extra}")
    Path(models_dir).mkdir(parents=True, exist_ok=True)
    return [
        _write_json(Path(models_dir) / f"{locale}.json", render_interaction_model(locale, sources))
        for locale in locales
    ]


def stale_interaction_models(
    models_dir: Path = MODELS_DIR,
    sources_dir: Path = MODEL_SOURCES_DIR,
    locales: Sequence[str] = LOCALES,
) -> list[str]:
    """Locales whose file in ``models_dir`` is not what the sources render to (or is missing)."""
    stale = []
    for locale in locales:
        path = Path(models_dir) / f"{locale}.json"
        rendered = model_json(render_interaction_model(locale, sources_dir))
        if not path.exists() or path.read_text(encoding="utf-8") != rendered:
            stale.append(locale)
    return stale


def model_json(model: dict[str, Any]) -> str:
    """An interaction model as the files hold it (what :func:`write_interaction_models` writes)."""
    return json.dumps(model, indent=2, ensure_ascii=False) + "\n"


def language_model(model: dict[str, Any]) -> dict[str, Any]:
    """``interactionModel.languageModel`` of an ask-cli interaction model file."""
    return model["interactionModel"]["languageModel"]


def clean_value(text: str) -> str:
    """A slot value or synonym as Alexa accepts it: lower case, no stray punctuation."""
    cleaned = _VALUE_JUNK.sub(" ", text.lower().replace("_", " "))
    return " ".join(cleaned.split())[:MAX_VALUE_LENGTH].strip()


def _inflections(lemma: str) -> list[str]:
    from db.keywords import surface_forms

    return sorted(form for form in surface_forms(lemma) if form != lemma)


def merge_keyword_values(
    model: dict[str, Any], catalogue: Iterable[tuple[str, Sequence[str]]]
) -> dict[str, Any]:
    """A copy of ``model`` whose STORY_KEYWORD type also holds every catalogue keyword.

    Each value's id is its lemma. Checked-in values keep their curated synonyms plus the
    catalogue's; keywords new to the model also get their inflections ("mouse" -> "mice"). Value
    names are claimed first (a catalogue keyword that a checked-in value listed as a synonym
    becomes a value of its own), then synonyms in order, so no phrase maps to two ids. The SMAPI
    schema wants at least one synonym per value: "the <keyword>" stands in when nothing else is
    left.
    """
    merged = copy.deepcopy(model)
    slot_type = next(t for t in language_model(merged)["types"] if t["name"] == KEYWORD_TYPE)
    entries: dict[str, list[str]] = {}
    for value in slot_type.get("values", []):
        lemma = value.get("id") or value["name"]["value"]
        entries[lemma] = list(value["name"].get("synonyms", []))
    for raw_lemma, synonyms in catalogue:
        lemma = clean_value(raw_lemma)
        if not lemma:
            continue
        if lemma not in entries:
            entries[lemma] = _inflections(lemma)
        entries[lemma].extend(synonyms)
    claimed = set(entries)
    values = []
    for lemma, synonyms in entries.items():
        kept: list[str] = []
        for raw in synonyms:
            synonym = clean_value(raw)
            if synonym and synonym not in claimed:
                claimed.add(synonym)
                kept.append(synonym)
        for stand_in in (f"the {lemma}", f"a {lemma}"):
            if not kept and stand_in not in claimed:
                claimed.add(stand_in)
                kept.append(stand_in)
        values.append({"id": lemma, "name": {"value": lemma, "synonyms": kept}})
    slot_type["values"] = values
    return merged


def slot_references(sample: str) -> list[str]:
    """Slot names a sample utterance refers to, in order."""
    return _SLOT_REF.findall(sample)


def check_invocation_name(name: str) -> list[str]:
    """Problems with an invocation name (Alexa's rules for custom skills)."""
    problems = []
    if name != name.lower():
        problems.append(f"invocation name {name!r} must be lower case")
    if len(name.split()) < 2:
        problems.append(f"invocation name {name!r} needs at least two words")
    if re.search(r"\b(alexa|amazon|echo|skill|app)\b", name):
        problems.append(f"invocation name {name!r} may not contain alexa/amazon/echo/skill/app")
    if not re.fullmatch(r"[a-z][a-z .']*[a-z]", name):
        problems.append(f"invocation name {name!r} may hold only letters, spaces and periods")
    if re.search(r"\b(launch|ask|tell|load|begin|enable)\b", name):
        problems.append(f"invocation name {name!r} may not contain a launch phrase")
    return problems


def check_interaction_model(model: dict[str, Any]) -> list[str]:
    """Problems Alexa's model builder would reject, beyond the JSON schema; empty when fine."""
    lm = language_model(model)
    problems = check_invocation_name(lm.get("invocationName", ""))
    types = {t["name"]: t for t in lm.get("types", [])}
    seen: dict[str, str] = {}
    for intent in lm["intents"]:
        name = intent["name"]
        slots = {slot["name"]: slot["type"] for slot in intent.get("slots", [])}
        for slot_type in slots.values():
            if not slot_type.startswith("AMAZON.") and slot_type not in types:
                problems.append(f"{name}: slot type {slot_type} is not defined")
        for sample in intent.get("samples", []):
            where = f"{name}: {sample!r}"
            if len(sample) > MAX_SAMPLE_LENGTH:
                problems.append(f"{where} is longer than {MAX_SAMPLE_LENGTH} characters")
            text = _SLOT_REF.sub("", sample)
            if sample != sample.strip() or "  " in sample:
                problems.append(f"{where} has stray spaces")
            if text.strip() and not _SAMPLE_TEXT.match(text):
                problems.append(f"{where} holds upper case or punctuation Alexa rejects")
            refs = slot_references(sample)
            for ref in refs:
                if ref not in slots:
                    problems.append(f"{where} refers to undefined slot {{{ref}}}")
            if len(refs) != len(set(refs)):
                problems.append(f"{where} uses a slot twice")
            if re.search(r"\}\s*\{", sample):
                problems.append(f"{where} has two slots with no words between them")
            key = " ".join(sample.lower().split())
            if key in seen and seen[key] != name:
                problems.append(f"{where} is also a sample of {seen[key]}")
            elif key in seen:
                problems.append(f"{where} is listed twice")
            seen[key] = name
    for slot_type in types.values():
        phrases: dict[str, str] = {}
        for value in slot_type.get("values", []):
            vid = value.get("id") or value["name"]["value"]
            for phrase in [value["name"]["value"], *value["name"].get("synonyms", [])]:
                if phrase != clean_value(phrase):
                    problems.append(f"{slot_type['name']}: {phrase!r} is not a clean value")
                if phrases.get(phrase, vid) != vid:
                    problems.append(
                        f"{slot_type['name']}: {phrase!r} belongs to {phrases[phrase]} and {vid}"
                    )
                phrases[phrase] = vid
    return problems


def example_phrase_utterance(phrase: str, invocation_name: str) -> str | None:
    """The sample-utterance part of a publishing example phrase; "" for a bare launch phrase."""
    text = phrase.lower().strip().rstrip(".?!")
    text = re.sub(r"^alexa,?\s+", "", text)
    match = re.fullmatch(
        rf"(?:open|launch|start|ask|tell|talk to)\s+{re.escape(invocation_name)}"
        r"(?:\s+(?:to|for|about|that|if|whether)\s+(?P<rest>.+))?",
        text,
    )
    if match is None:
        return text
    return match.group("rest") or ""


def sample_matches(sample: str, utterance: str, slot_values: dict[str, set[str]]) -> bool:
    """Whether ``utterance`` is ``sample`` with each slot filled by one of its known values."""
    pattern = ""
    position = 0
    for match in _SLOT_REF.finditer(sample):
        pattern += re.escape(sample[position : match.start()])
        options = sorted(slot_values.get(match.group(1), set()), key=len, reverse=True)
        alternatives = "|".join(re.escape(option) for option in options)
        pattern += f"(?:{alternatives})" if options else ".+"
        position = match.end()
    pattern += re.escape(sample[position:])
    return re.fullmatch(pattern, utterance) is not None


def check_example_phrases(manifest: dict[str, Any], models: dict[str, dict[str, Any]]) -> list[str]:
    """Example phrases of the manifest that no sample utterance (with known values) produces."""
    problems = []
    locales = manifest["manifest"]["publishingInformation"]["locales"]
    for locale, info in locales.items():
        if locale not in models:
            problems.append(f"{locale}: the manifest has a locale with no interaction model")
            continue
        lm = language_model(models[locale])
        phrases_by_type = {
            t["name"]: {
                phrase
                for value in t.get("values", [])
                for phrase in [value["name"]["value"], *value["name"].get("synonyms", [])]
            }
            for t in lm.get("types", [])
        }
        for index, phrase in enumerate(info.get("examplePhrases", [])):
            utterance = example_phrase_utterance(phrase, lm["invocationName"])
            if index == 0 and not phrase.lower().startswith("alexa"):
                problems.append(f"{locale}: the first example phrase must start with 'Alexa'")
            if utterance == "":
                continue
            found = False
            for intent in lm["intents"]:
                slot_values = {
                    slot["name"]: phrases_by_type.get(slot["type"], set())
                    for slot in intent.get("slots", [])
                }
                samples = intent.get("samples", [])
                if any(sample_matches(s, utterance, slot_values) for s in samples):
                    found = True
                    break
            if not found:
                problems.append(f"{locale}: example phrase {phrase!r} matches no sample utterance")
    return problems


def with_endpoint(manifest: dict[str, Any], endpoint: str | None) -> dict[str, Any]:
    """A copy of the manifest pointing at ``endpoint`` (an https URL or a Lambda ARN)."""
    result = copy.deepcopy(manifest)
    if not endpoint:
        return result
    if not endpoint.startswith(("https://", "arn:")):
        raise SkillPackageError(f"endpoint {endpoint!r} must be an https:// URL or a Lambda ARN")
    block = result["manifest"]["apis"]["custom"]["endpoint"]
    block["uri"] = endpoint
    if endpoint.startswith("arn:"):
        block.pop("sslCertificateType", None)
    else:
        block.setdefault("sslCertificateType", "Trusted")
    return result


def build_skill_package(
    out_dir: Path,
    catalogue: Iterable[tuple[str, Sequence[str]]] = (),
    *,
    endpoint: str | None = None,
    models_dir: Path = MODELS_DIR,
    manifest_path: Path = MANIFEST_PATH,
    locales: Sequence[str] = LOCALES,
) -> list[Path]:
    """Write the ask-cli v2 skill package to ``out_dir``; return the files written.

    Raises SkillPackageError listing every problem instead of writing a package Alexa rejects.
    """
    catalogue = list(catalogue)
    manifest = with_endpoint(load_json(manifest_path), endpoint)
    models = {
        locale: merge_keyword_values(load_seed_model(locale, models_dir), catalogue)
        for locale in locales
    }
    problems = [f"{loc}: {p}" for loc, m in models.items() for p in check_interaction_model(m)]
    problems += check_example_phrases(manifest, models)
    if problems:
        raise SkillPackageError("the skill package is not valid:\n  " + "\n  ".join(problems))
    out_dir = Path(out_dir)
    custom = out_dir / "interactionModels" / "custom"
    custom.mkdir(parents=True, exist_ok=True)
    written = [_write_json(out_dir / "skill.json", manifest)]
    for locale, model in models.items():
        written.append(_write_json(custom / f"{locale}.json", model))
    return written


def _write_json(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(model_json(data), encoding="utf-8")
    return path


def build_lambda_bundle(
    out_dir: Path, *, project_root: Path = PROJECT_ROOT, lambda_dir: Path = LAMBDA_DIR
) -> list[Path]:
    """Write the code ``ask deploy`` uploads: the shim, its requirements and our packages.

    ask-cli's lambda deployer installs ``requirements.txt`` into the folder it is given, but
    it cannot see packages outside that folder, so the shim alone would fail to import.
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    written = [
        Path(shutil.copy2(lambda_dir / name, out_dir / name))
        for name in ("lambda_function.py", "requirements.txt")
    ]
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in LAMBDA_PACKAGES:
        written.append(
            Path(shutil.copytree(project_root / package, out_dir / package, ignore=ignore))
        )
    compile_bytecode(out_dir)
    return written


def compile_bytecode(folder: Path) -> None:
    """Write every module's bytecode next to it, for the interpreter that builds the bundle.

    Lambda's code folder is read-only, so without these files every cold start compiles all our
    modules from source again (~40 ms). Unchecked-hash pycs are used whatever the sources'
    timestamps become in the upload's zip; a runtime of another Python version ignores them.
    """
    ok = compileall.compile_dir(
        str(folder),
        quiet=1,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    if not ok:
        raise SkillPackageError(f"some modules under {folder} do not compile")


def keyword_synonyms(sources_dir: Path = MODEL_SOURCES_DIR) -> list[tuple[str, str]]:
    """(keyword, synonym) pairs of STORY_KEYWORD in base.json: what Alexa resolves for us.

    ``bedtime run``/``talk`` seed the store's synonyms table with them, so channels without
    Alexa's entity resolution (the terminal, the console) understand "bunny rabbit" too.
    """
    model = language_model(load_json(Path(sources_dir) / "base.json"))
    slot_type = next(t for t in model["types"] if t["name"] == KEYWORD_TYPE)
    return [
        (value["id"], synonym)
        for value in slot_type["values"]
        for synonym in value["name"].get("synonyms", [])
    ]
