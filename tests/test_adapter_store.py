import dataclasses
import hashlib
import json
import os
import pickle
import re
import shutil
import zipfile
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file, save_file
from tiny_whisper import make_lora_adapter, make_tiny_whisper

from lorawhisper_app.core import adapter_store
from lorawhisper_app.core.adapter_meta import AdapterMeta, BaseModelRef, DevWer, LoraSpec
from lorawhisper_app.core.adapter_store import AdapterStore, bundled_adapter_dir, validate_adapter_dir
from lorawhisper_app.core.errors import AdapterError

FP = "sha256:" + "a1" * 32
OTHER_FP = "sha256:" + "b2" * 32


@pytest.fixture(scope="session")
def template(tmp_path_factory) -> Path:
    """One real peft adapter (language sw); tests copy it rather than build new ones."""
    return make_lora_adapter(tmp_path_factory.mktemp("templates"), language="sw", fingerprint=FP)


@pytest.fixture
def store(tmp_path) -> AdapterStore:
    (tmp_path / "bundled").mkdir()
    return AdapterStore(tmp_path / "bundled", tmp_path / "user")


def install(template: Path, root: Path, name: str, **changes) -> Path:
    """Copy the template to `root/name`, renaming it and changing its metadata."""
    folder = root / name
    shutil.copytree(template, folder)
    rewrite_meta(folder, name=name, **changes)
    return folder


def rewrite_meta(folder: Path, **changes) -> None:
    dataclasses.replace(AdapterMeta.load(folder), **changes).save(folder)


def tree_hash(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        for path in sorted(root.rglob("*"))
    }


def same_files(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir())
    if names != sorted(p.name for p in b.iterdir()):
        return False
    return all((a / n).read_bytes() == (b / n).read_bytes() for n in names)


def minimal_meta_dict() -> dict:
    meta = AdapterMeta(
        name="sw",
        language="sw",
        language_name="Swahili",
        decode_token="sw",
        base_model=BaseModelRef("openai/whisper-base (built-in)", FP),
        lora=LoraSpec(rank=32, alpha=64, dropout=0.05, targets=("q_proj", "v_proj")),
    )
    return meta.to_dict()


# --- metadata ---------------------------------------------------------------------


def test_meta_round_trip(template, tmp_path):
    meta = dataclasses.replace(
        AdapterMeta.load(template),
        dev_wer=DevWer(before=0.93, after=0.35),
        mixture={"sw": 0.7, "yo": 0.3},
        extra={"future_field": {"kept": [1, 2]}},
    )
    data = meta.to_dict()
    assert data["schema_version"] == 1 and data["future_field"] == {"kept": [1, 2]}
    targets = ["q_proj", "k_proj", "v_proj", "fc1", "fc2"]
    assert data["lora"] == {"rank": 4, "alpha": 8, "dropout": 0.05, "targets": targets}
    assert AdapterMeta.from_dict(json.loads(json.dumps(data))) == meta
    meta.save(tmp_path)
    assert AdapterMeta.load(tmp_path) == meta
    assert json.loads((tmp_path / "lorawhisper.json").read_text()) == data


def test_meta_optional_fields_may_be_missing():
    data = minimal_meta_dict()
    for key in ("training_data", "dev_wer", "mixture"):
        del data[key]
    meta = AdapterMeta.from_dict(data)
    assert (meta.training_data, meta.dev_wer, meta.mixture, meta.extra) == ({}, None, None, {})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.pop("name"), "'name' is missing"),
        (lambda d: d.update(name="Sw!"), "'name'"),
        (lambda d: d.update(schema_version=2), "'schema_version' is 2"),
        (lambda d: d.update(schema_version=True), "'schema_version'"),
        (lambda d: d.update(language="swahili"), "'language'"),
        (lambda d: d.update(decode_token="rw"), "'decode_token'"),
        (lambda d: d["base_model"].pop("fingerprint"), "'base_model.fingerprint' is missing"),
        (lambda d: d.update(base_model="whisper"), "'base_model'"),
        (lambda d: d["lora"].update(rank="32"), "'lora.rank'"),
        (lambda d: d["lora"].update(rank=0), "'lora.rank'"),
        (lambda d: d["lora"].update(targets=[]), "'lora.targets'"),
        (lambda d: d["lora"].update(dropout=1.5), "'lora.dropout'"),
        (lambda d: d.update(dev_wer={"before": "0.9", "after": 0.3}), "'dev_wer.before'"),
        (lambda d: d.update(mixture={"sw": -1}), "'mixture'"),
        (lambda d: d.update(training_data=[1]), "'training_data'"),
        (lambda d: d.update(created="yesterday"), "'created'"),
    ],
)
def test_meta_refuses_bad_fields(change, field):
    data = minimal_meta_dict()
    change(data)
    with pytest.raises(AdapterError) as raised:
        AdapterMeta.from_dict(data, "x/lorawhisper.json")
    message = str(raised.value)
    assert message.startswith("x/lorawhisper.json: field ") and field in message and "\n" not in message


# --- the tiny helper makes adapters peft loads ------------------------------------


def test_tiny_adapter_loads_in_peft_and_changes_the_output(template):
    model = make_tiny_whisper()
    features = torch.randn(1, 80, 3000, generator=torch.Generator().manual_seed(0))
    prompt = torch.tensor([[50258, 50318, 50359, 50363]])  # SOT <|sw|> transcribe notimestamps
    with torch.no_grad():
        bare = model(input_features=features, decoder_input_ids=prompt).logits
        peft_model = PeftModel.from_pretrained(model, template, adapter_name="sw")
        adapted = peft_model(input_features=features, decoder_input_ids=prompt).logits
        with peft_model.disable_adapter():
            disabled = peft_model(input_features=features, decoder_input_ids=prompt).logits
    assert (adapted - bare).abs().max() > 0.1
    assert torch.equal(disabled, bare)
    lang_to_id = model.generation_config.lang_to_id
    assert (lang_to_id["<|en|>"], lang_to_id["<|sw|>"], lang_to_id["<|su|>"]) == (50259, 50318, 50357)


# --- listing ----------------------------------------------------------------------


def test_empty_store(tmp_path):
    store = AdapterStore(None, tmp_path / "nowhere")
    assert store.list() == [] and store.problems() == []
    with pytest.raises(AdapterError, match="^no adapter named sw; installed: none$"):
        store.get("sw")


def test_bundled_folder_can_be_moved_or_hidden(monkeypatch, tmp_path):
    shipped = bundled_adapter_dir()
    assert shipped is not None and (shipped / "sw" / "lorawhisper.json").is_file()
    monkeypatch.setenv("LORAWHISPER_BUNDLED_ADAPTERS", str(tmp_path))
    assert bundled_adapter_dir() == tmp_path
    monkeypatch.setenv("LORAWHISPER_BUNDLED_ADAPTERS", "")
    assert bundled_adapter_dir() is None
    assert AdapterStore(bundled_adapter_dir(), tmp_path / "user").list() == []


def test_list_get_and_shadowing(template, store):
    install(template, store.bundled_dir, "sw")
    install(template, store.bundled_dir, "yo", language="yo", language_name="Yoruba", decode_token="yo")
    user_sw = install(template, store.user_dir, "sw")
    adapters = store.list()
    assert [(a.name, a.source) for a in adapters] == [("sw", "user"), ("yo", "bundled")]
    sw = store.get("sw")
    assert sw.path == user_sw and sw.meta.language == "sw"
    assert sw.compatible_with(FP) and not sw.compatible_with(OTHER_FP)
    assert sw.size_bytes == sum(p.stat().st_size for p in user_sw.iterdir())
    with pytest.raises(AdapterError, match="^no adapter named rw; installed: sw, yo$"):
        store.get("rw")
    assert store.problems() == []


def test_broken_folders_are_problems_not_crashes(template, store):
    install(template, store.user_dir, "sw")
    (store.user_dir / "empty").mkdir()
    install(template, store.user_dir, "renamed")
    rewrite_meta(store.user_dir / "renamed", name="other")
    (store.user_dir / ".hidden-temp").mkdir()
    assert [a.name for a in store.list()] == ["sw"]
    problems = store.problems()
    assert len(problems) == 2
    assert str(store.user_dir / "empty") in problems[0]
    assert str(store.user_dir / "renamed" / "lorawhisper.json") in problems[1]


def test_a_folder_changed_after_a_listing_is_checked_again(template, store, monkeypatch):
    folder = install(template, store.user_dir, "sw")
    install(template, store.user_dir, "yo", language="yo", language_name="Yoruba", decode_token="yo")
    assert [a.name for a in store.list()] == ["sw", "yo"]
    checked = []
    validate = adapter_store.validate_adapter_dir
    monkeypatch.setattr(adapter_store, "validate_adapter_dir", lambda path, fp: checked.append(path.name) or validate(path, fp))
    assert [a.name for a in store.list()] == ["sw", "yo"] and checked == []  # nothing changed: nothing re-read
    _truncate(folder, 100)  # edited in place
    assert [a.name for a in store.list()] == ["yo"] and checked == ["sw"]
    assert "adapter_model.safetensors" in store.problems()[0]
    shutil.rmtree(folder)
    install(template, store.user_dir, "sw", dev_wer=None)  # replaced by another folder
    assert [a.name for a in store.list()] == ["sw", "yo"] and store.problems() == []
    rewrite_meta(folder, language_name="Kiswahili")
    assert store.get("sw").meta.language_name == "Kiswahili"


def test_for_language_prefers_user_then_wer_then_newest(template, store):
    install(template, store.bundled_dir, "sw-bundled", dev_wer=DevWer(0.9, 0.1))
    assert store.for_language("sw", FP).name == "sw-bundled"
    install(template, store.user_dir, "sw-old", created="2026-01-01T00:00:00Z")
    install(template, store.user_dir, "sw-new", created="2026-06-01T00:00:00Z")
    assert store.for_language("sw", FP).name == "sw-new"
    install(template, store.user_dir, "sw-good", dev_wer=DevWer(0.9, 0.3), created="2025-01-01T00:00:00Z")
    install(template, store.user_dir, "sw-bad", dev_wer=DevWer(0.9, 0.5))
    assert store.for_language("sw", FP).name == "sw-good"
    install(template, store.user_dir, "sw-alien", dev_wer=DevWer(0.9, 0.0), base_model=BaseModelRef("x", OTHER_FP))
    assert store.for_language("sw", FP).name == "sw-good"
    assert store.for_language("sw", OTHER_FP).name == "sw-alien"
    assert store.for_language("yo", FP) is None


# --- import, export, remove -------------------------------------------------------


def test_import_folder(template, store):
    info = store.import_(template, FP)
    assert (info.name, info.source, info.path) == ("sw", "user", store.user_dir / "sw")
    assert same_files(template, info.path)
    assert store.get("sw") == info
    assert [p.name for p in store.user_dir.iterdir()] == ["sw"]  # no temp folders left


def test_import_under_another_name(template, store):
    info = store.import_(template, FP, name="sw-v2")
    assert info.meta.name == "sw-v2" and AdapterMeta.load(store.user_dir / "sw-v2").name == "sw-v2"
    weights = "adapter_model.safetensors"
    assert (template / weights).read_bytes() == (info.path / weights).read_bytes()
    with pytest.raises(AdapterError, match="invalid adapter name"):
        store.import_(template, FP, name="../escape")


def test_import_refuses_existing_name_unless_replace(template, store, tmp_path):
    store.import_(template, FP)
    with pytest.raises(AdapterError, match="already installed"):
        store.import_(template, FP)
    newer = install(template, tmp_path / "src", "sw", dev_wer=DevWer(0.9, 0.2))
    assert store.import_(newer, FP, replace=True).meta.dev_wer == DevWer(0.9, 0.2)
    assert store.get("sw").meta.dev_wer == DevWer(0.9, 0.2)
    assert [p.name for p in store.user_dir.iterdir()] == ["sw"]


def test_import_over_a_bundled_name_needs_replace(template, store):
    install(template, store.bundled_dir, "sw")
    with pytest.raises(AdapterError, match="already bundled with the app"):
        store.import_(template, FP)
    assert store.import_(template, FP, replace=True).source == "user"


def test_failed_replace_keeps_the_old_adapter(template, store, tmp_path, monkeypatch):
    store.import_(template, FP)
    before = tree_hash(store.user_dir)
    rename = os.rename

    def failing_rename(src, dst):
        if Path(src).name == "content":
            raise OSError("disk on fire")
        rename(src, dst)

    monkeypatch.setattr(adapter_store.os, "rename", failing_rename)
    newer = install(template, tmp_path / "src", "sw", dev_wer=DevWer(0.9, 0.2))
    with pytest.raises(AdapterError, match="could not install.*disk on fire"):
        store.import_(newer, FP, replace=True)
    assert tree_hash(store.user_dir) == before


def test_export_zip_import_round_trip(template, store, tmp_path):
    store.import_(template, FP)
    archive = store.export("sw", tmp_path / "out" / "sw.zip")
    with zipfile.ZipFile(archive) as zipped:
        assert sorted(zipped.namelist()) == sorted(f"sw/{p.name}" for p in template.iterdir())
    other = AdapterStore(None, tmp_path / "other")
    info = other.import_(archive, FP)
    assert same_files(template, info.path)
    assert [p.name for p in archive.parent.iterdir()] == ["sw.zip"]  # no temp file left


def test_import_zip_with_files_at_root(template, store, tmp_path):
    archive = tmp_path / "flat.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in template.iterdir():
            zipped.write(path, path.name)
    assert same_files(template, store.import_(archive, FP).path)


def test_export_folder(template, store, tmp_path):
    store.import_(template, FP)
    target = store.export("sw", tmp_path / "exported")
    assert target == tmp_path / "exported" / "sw" and same_files(template, target)
    with pytest.raises(AdapterError, match="already exists"):
        store.export("sw", tmp_path / "exported")
    assert same_files(template, AdapterStore(None, tmp_path / "other").import_(target, FP).path)


def test_remove(template, store):
    install(template, store.bundled_dir, "sw")
    install(template, store.bundled_dir, "yo", language="yo", language_name="Yoruba", decode_token="yo")
    store.import_(template, FP, replace=True)
    store.remove("sw")
    assert store.get("sw").source == "bundled"  # the bundled one shows again
    assert list(store.user_dir.iterdir()) == []
    with pytest.raises(AdapterError, match="^adapter sw is bundled with the app and cannot be removed$"):
        store.remove("sw")
    with pytest.raises(AdapterError, match="^no adapter named rw; installed: sw, yo$"):
        store.remove("rw")
    assert (store.bundled_dir / "sw").is_dir()


# --- refusals ---------------------------------------------------------------------


def _tensors(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "adapter_model.safetensors")


def _edit_config(folder: Path, **changes) -> None:
    path = folder / "adapter_config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def _truncate(folder: Path, keep: int) -> None:
    path = folder / "adapter_model.safetensors"
    path.write_bytes(path.read_bytes()[:keep])


def _add_tensor(folder: Path) -> None:
    tensors = _tensors(folder)
    tensors["base_model.model.model.encoder.conv1.weight"] = torch.zeros(4, 4)
    save_file(tensors, folder / "adapter_model.safetensors")


def _unpaired(folder: Path) -> None:
    tensors = {k: v for k, v in _tensors(folder).items() if not k.endswith("encoder.layers.0.fc1.lora_B.weight")}
    save_file(tensors, folder / "adapter_model.safetensors")


FOLDER_REFUSALS = {
    "pickle beside safetensors": (
        lambda f: (f / "adapter_model.bin").write_bytes(pickle.dumps({"x": 1})),
        "adapter_model.bin",
        "only safetensors adapters are accepted",
    ),
    "pickle instead of safetensors": (
        lambda f: (f / "adapter_model.safetensors").rename(f / "weights.pt"),
        "weights.pt",
        "nothing is unpickled",
    ),
    "no weights": (lambda f: (f / "adapter_model.safetensors").unlink(), "adapter_model.safetensors", "missing"),
    "no config": (lambda f: (f / "adapter_config.json").unlink(), "adapter_config.json", "missing"),
    "random bytes": (
        lambda f: (f / "adapter_model.safetensors").write_bytes(os.urandom(4096)),
        "adapter_model.safetensors",
        "not a safetensors file",
    ),
    "truncated data": (lambda f: _truncate(f, -100 + (f / "adapter_model.safetensors").stat().st_size),
                       "adapter_model.safetensors", "truncated"),
    "truncated header": (lambda f: _truncate(f, 20), "adapter_model.safetensors", "not a safetensors file"),
    "not LoRA": (lambda f: _edit_config(f, peft_type="IA3"), "adapter_config.json", "only LoRA adapters"),
    "r zero": (lambda f: _edit_config(f, r=0), "adapter_config.json", "positive integer"),
    "r string": (lambda f: _edit_config(f, r="4"), "adapter_config.json", "positive integer"),
    "r disagrees with tensors": (lambda f: _edit_config(f, r=8), "adapter_model.safetensors", "says r=8"),
    "no targets": (lambda f: _edit_config(f, target_modules=None), "adapter_config.json", "target_modules"),
    "config not JSON": (
        lambda f: (f / "adapter_config.json").write_text("{nope"), "adapter_config.json", "not readable JSON"
    ),
    "non-LoRA tensor": (_add_tensor, "adapter_model.safetensors", "is not a LoRA weight"),
    "unpaired tensor": (_unpaired, "adapter_model.safetensors", "without its pair"),
    "no metadata": (lambda f: (f / "lorawhisper.json").unlink(), "lorawhisper.json", "missing"),
    "metadata not JSON": (
        lambda f: (f / "lorawhisper.json").write_text("[1,"), "lorawhisper.json", "not readable JSON"
    ),
    "metadata rank disagrees": (
        lambda f: rewrite_meta(f, lora=LoraSpec(8, 16, 0.0, ("q_proj",))), "lorawhisper.json", "says r=4"
    ),
    "another backbone": (
        lambda f: rewrite_meta(f, base_model=BaseModelRef("openai/whisper-small", OTHER_FP)),
        "lorawhisper.json",
        "was made for another backbone (openai/whisper-small, fingerprint sha256:b2b2b2b2b2b2…) "
        "and this app runs the backbone sha256:a1a1a1a1a1a1…",
    ),
}


@pytest.fixture
def guarded(template, store, monkeypatch):
    """A store holding one adapter, with every unpickling entry point booby-trapped."""

    def forbidden(*args, **kwargs):
        raise AssertionError("something was unpickled")

    for module, attr in ((pickle, "load"), (pickle, "loads"), (torch, "load")):
        monkeypatch.setattr(module, attr, forbidden)
    store.import_(template, FP, name="yo")
    return store


@pytest.mark.parametrize("case", FOLDER_REFUSALS)
@pytest.mark.parametrize("packed", [False, True], ids=["folder", "zip"])
def test_import_refusals_leave_the_store_unchanged(case, packed, template, guarded, tmp_path):
    damage, file_name, problem = FOLDER_REFUSALS[case]
    source = tmp_path / "src" / "sw"
    shutil.copytree(template, source)
    damage(source)
    shown = source
    if packed:
        shown = tmp_path / "sw.zip"
        with zipfile.ZipFile(shown, "w") as zipped:
            for path in source.iterdir():
                zipped.write(path, f"sw/{path.name}")
    before = tree_hash(guarded.user_dir)
    with pytest.raises(AdapterError) as raised:
        guarded.import_(shown, FP)
    message = str(raised.value)
    assert str(shown) in message and file_name in message and problem in message, message
    assert "\n" not in message
    assert tree_hash(guarded.user_dir) == before
    if not packed:
        with pytest.raises(AdapterError, match=re.escape(problem)):
            validate_adapter_dir(source, FP)


def _zip_with(archive: Path, template: Path, member: zipfile.ZipInfo | str, data: bytes = b"x") -> Path:
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in template.iterdir():
            zipped.write(path, f"sw/{path.name}")
        zipped.writestr(member, data)
    return archive


def _symlink_member() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("sw/link")
    info.external_attr = (0o120777 << 16)
    return info


@pytest.mark.parametrize(
    ("member", "problem"),
    [
        ("../evil", "points outside the archive"),
        ("sw/../../evil", "points outside the archive"),
        ("/etc/evil", "absolute path"),
        ("C:/evil", "absolute path"),
        (_symlink_member(), "symbolic link"),
        ("sw/adapter_model.bin", "only safetensors adapters are accepted"),
    ],
)
def test_unsafe_zip_members_are_refused(member, problem, template, guarded, tmp_path):
    archive = _zip_with(tmp_path / "evil.zip", template, member)
    before = tree_hash(guarded.user_dir)
    with pytest.raises(AdapterError, match=problem) as raised:
        guarded.import_(archive, FP)
    assert str(archive) in str(raised.value)
    assert tree_hash(guarded.user_dir) == before
    assert not (tmp_path / "evil").exists() and not (guarded.user_dir.parent / "evil").exists()


def test_oversize_zip_member_is_refused(template, guarded, tmp_path, monkeypatch):
    monkeypatch.setattr(adapter_store, "MAX_ZIP_MEMBER_BYTES", 100_000)  # the weights are ~68 kB
    archive = _zip_with(tmp_path / "big.zip", template, "sw/notes.txt", b"x" * 100_001)
    before = tree_hash(guarded.user_dir)
    with pytest.raises(AdapterError, match="notes.txt.*over the 100000-byte limit"):
        guarded.import_(archive, FP)
    assert tree_hash(guarded.user_dir) == before


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"PK\x03\x04 not really a zip", "not a readable zip archive"),
        (None, "found adapter files in: none"),
    ],
)
def test_bad_zip_archives_are_refused(content, problem, guarded, tmp_path):
    archive = tmp_path / "bad.zip"
    if content is None:
        with zipfile.ZipFile(archive, "w") as zipped:
            zipped.writestr("readme.txt", "hello")
    else:
        archive.write_bytes(content)
    before = tree_hash(guarded.user_dir)
    with pytest.raises(AdapterError, match=problem):
        guarded.import_(archive, FP)
    assert tree_hash(guarded.user_dir) == before


def test_a_full_disk_refuses_import_and_export_and_leaves_nothing_behind(small_disk, tmp_path):
    """The shipped Swahili adapter (7 MB) into 1 MB filesystems: one line naming the folder, no partial copies."""
    shipped = bundled_adapter_dir() / "sw"
    fp = AdapterMeta.load(shipped).base_model.fingerprint
    store = AdapterStore(bundled_adapter_dir(), tmp_path / "user")
    archive = store.export("sw", tmp_path / "sw.zip")
    full = AdapterStore(None, small_disk("1m") / "adapters")
    for source in (shipped, archive):
        with pytest.raises(AdapterError) as caught:
            full.import_(source, fp)
        assert str(caught.value) == (f"{full.user_dir}: could not install {source.name} there (No space left on "
                                     "device); nothing was installed")
        assert full.list() == [] and list(full.user_dir.iterdir()) == []
    out = small_disk("1m")
    for dest in (out / "sw.zip", out / "exported"):
        with pytest.raises(AdapterError) as caught:
            store.export("sw", dest)
        assert str(caught.value) == f"{dest}: could not export sw there (No space left on device); nothing was left behind"
    assert [p for p in out.rglob("*") if p.is_file()] == []
