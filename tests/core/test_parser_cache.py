"""The parser cache: `--help` and a mistyped key answered before torch is imported, never a valid command refused."""

import contextlib
import io
import os
import subprocess
import sys

import pytest

from ssmkit.cli import main
from ssmkit.parser_cache import ParserCache, ParserFacts, fingerprint
from ssmkit.plugins import find_task

TASK = "synthetic.selective_copy"
# runs ssmkit's main in a fresh interpreter and reports whether torch was imported on the way
PROBE = """import sys
from ssmkit.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exit:
    print("torch" in sys.modules, exit.code)
"""


def probe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=os.environ)


def cached_facts(verb: str = "fit") -> ParserFacts:
    facts = ParserCache.of_task(verb, TASK, False, find_task(TASK)[2]).load()
    assert facts is not None, "the full parser stored no entry"
    return facts


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory):
    """A cache the full parser filled once (`fit TASK --help`), shared by this module's tests, and the help that
    parser printed."""
    folder, printed = tmp_path_factory.mktemp("cache"), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SSMKIT_CACHE_DIR", str(folder))
        with pytest.raises(SystemExit) as exit_info, contextlib.redirect_stdout(printed):
            main(["fit", TASK, "--help"])
        assert exit_info.value.code == 0
        yield folder, printed.getvalue()


@pytest.fixture
def cache(warm_cache, monkeypatch):
    monkeypatch.setenv("SSMKIT_CACHE_DIR", str(warm_cache[0]))
    return warm_cache[0]


def test_help_from_the_cache_is_the_parsers_help_without_torch(warm_cache, cache):
    result = probe("fit", TASK, "--help")
    assert result.stdout.endswith("False 0\n"), result.stderr  # torch never imported, exit 0
    assert result.stdout.removesuffix("False 0\n") == warm_cache[1]


def test_a_mistyped_key_is_refused_without_torch(cache):
    result = probe("fit", TASK, "--model.backbone.d_modl", "8", "--trainer.max_step=3")
    assert result.stdout == "False 2\n"
    assert "unrecognized arguments: --model.backbone.d_modl --trainer.max_step" in result.stderr
    assert "did you mean: --model.backbone.d_model, --trainer.max_steps" in result.stderr
    assert f"ssmkit fit {TASK} --help" in result.stderr


def test_the_cache_refuses_no_key_the_parser_accepts(cache):
    facts = cached_facts()
    assert facts.unknown_flags(f"--{key}" for key in facts.keys) == []
    chosen_at_run_time = [
        "--model.backbone.mixer_kwargs.d_state=8",  # a dict takes any key
        "--trainer.callbacks+=EarlyStopping",
        "--trainer.callbacks.patience=3",  # a class picked on the command line
        "--optimizer.lr",
        "--trainer.logger.init_args.flush_logs_every_n_steps",
    ]
    assert facts.unknown_flags(chosen_at_run_time) == []
    assert facts.unknown_flags(["--model.backbone.d_modl", "--data.n_trian=3", "8"]) == [
        "--model.backbone.d_modl",
        "--data.n_trian",
    ]


def test_a_command_without_an_entry_goes_to_the_parser(tmp_path, monkeypatch):
    monkeypatch.setenv("SSMKIT_CACHE_DIR", str(tmp_path))
    result = probe("fit", TASK, "--model.backbone.d_modl", "8")
    assert result.stdout == "True 2\n"  # the full parser, torch imported
    assert "did you mean: --model.backbone.d_model?" in result.stderr
    assert cached_facts() is not None  # and the parser filled the cache on the way


def test_the_fingerprint_follows_the_source(tmp_path, monkeypatch):
    package = tmp_path / "cached_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tasks.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = fingerprint(["cached_pkg"])
    assert fingerprint(["cached_pkg"]) == before
    (package / "tasks.py").write_text("X = 12\n")
    assert fingerprint(["cached_pkg"]) != before


def test_an_unwritable_cache_is_only_slower(tmp_path, monkeypatch):
    (tmp_path / "parsers").write_text("a file where the folder should be")
    monkeypatch.setenv("SSMKIT_CACHE_DIR", str(tmp_path))
    entry = ParserCache("fit", TASK, False, ("ssmkit",))
    entry.store(ParserFacts("help", frozenset({"a"}), frozenset()))
    assert entry.load() is None
