"""Every example in the README, CONTRIBUTING.md and docs/ runs as written, on any day, against a
real sandbox started here exactly as the README says (`parkgate sandbox --keys-file keys.json`).

Which fenced blocks run (the rules a writer follows are in CONTRIBUTING.md, "Examples in the docs"):

    ```sh        bash -e -o pipefail; the blocks of one page run in order in one shell session
                 (variables and functions carry over, as in a reader's terminal), in a directory that
                 holds the sandbox's keys.json and a parkgate.yaml (docs/parkgate.example.yaml with
                 its variables set and a throwaway Redis); `GW` is the sandbox's URL, `parkgate` and
                 `python3` are this virtualenv's.
    ```graphql   a query, mutation or subscription, sent as the demo client its first line names
                 (`# key: driver-app`); a subscription over SSE, which must open and report no error.
    ```python    python3, in the same directory and environment.

A runnable block right after a line `_Not runnable as written: <reason>._` is not run (it is not
collected, so nothing is skipped); the line and its reason are what a reader sees. A block in another programming language (js, bash, console…) must carry
that line too; blocks with no language, or text, json, yaml, mermaid, are displays and never run.

A ```json output or ```text output block right after a runnable block is what it prints, matched in
shape (`shape_matches`, `text_matches`). Without one, a block must exit 0 and print no GraphQL or
sandbox error (`{"errors": …}`, `{"error": …}`). No runnable block may hold a date: the examples
compute theirs with `date`, so they run on any day.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import OperationDefinitionNode, OperationType, parse
from tests.support import REPO

ROOT = REPO
#: the pages whose examples run, in this order (one sandbox for all of them)
PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("**/*.md"))]
RUNNABLE = {"sh", "graphql", "python"}
#: blocks that show something rather than do it
DISPLAYS = {"", "text", "json", "yaml", "mermaid", "csv", "http"}
MARKER = re.compile(r"^\s*_Not runnable as written: (?P<reason>\S.*?)\.?_\s*$")
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>```+)(?P<info>[^`]*)$")
DATE = re.compile(r"(?<!/)\b(19|20)\d\d-[01]\d-[0-3]\d\b")  # after a slash it is a path's version (…/getAll/2023-06-06)
ELLIPSIS = "…"
BLOCK_TIMEOUT_S = 90


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    info: str
    code: str
    skip_reason: str | None = None
    expected: Block | None = None  # the output block that follows it

    @property
    def where(self) -> str:
        return f"{page_name(self.page)}:{self.line}"

    @property
    def is_output(self) -> bool:
        return self.info.split()[1:2] == ["output"]


def page_name(page: Path) -> str:
    """A page's path as a reader of the repository knows it."""
    return page.relative_to(ROOT).as_posix() if page.is_relative_to(ROOT) else page.name


def blocks_of(page: Path) -> list[Block]:
    """The fenced blocks of a markdown page, each with the not-runnable marker before it, if any."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, info = opening["fence"], opening["info"].strip()
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            body.append(lines[j].removeprefix(opening["indent"]))
            j += 1
        before = next((lines[k] for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        marker = MARKER.match(before)
        found.append(Block(page, i + 1, info.split()[0].lower() if info else "", info, "\n".join(body) + "\n",
                           marker["reason"] if marker else None))
        i = j + 1
    for block, following in itertools.pairwise(found):
        if following.is_output and block.language in RUNNABLE:
            block.expected = following
    return found


def runnable_blocks() -> list[Block]:
    return [b for page in PAGES for b in blocks_of(page) if b.language in RUNNABLE and not b.is_output]


# --- matching what an example prints against what its page shows ------------------------------


def shape_matches(expected: Any, actual: Any) -> bool:
    """JSON in shape: "…" alone is any value; a string with "…" in it is a pattern; other strings,
    booleans and null exactly; any number for a number; an object has the same keys (a key "…"
    allows more); a list the same length (a last element "…" allows more)."""
    if expected == ELLIPSIS:
        return True
    if isinstance(expected, bool) or expected is None:
        return expected is actual
    if isinstance(expected, (int, float)):
        return isinstance(actual, (int, float)) and not isinstance(actual, bool)
    if isinstance(expected, str):
        return isinstance(actual, str) and pattern_matches(expected, actual)
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return False
        items = expected[:-1] if expected and expected[-1] == ELLIPSIS else expected
        if len(actual) < len(items) or (items is expected and len(actual) != len(items)):
            return False
        return all(shape_matches(e, a) for e, a in zip(items, actual, strict=False))  # actual may go on
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return False
        keys = set(expected) - {ELLIPSIS}
        if not keys <= set(actual) or (ELLIPSIS not in expected and set(actual) != keys):
            return False
        return all(shape_matches(expected[k], actual[k]) for k in keys)
    raise AssertionError(f"not JSON: {expected!r}")


def pattern_matches(expected: str, actual: str) -> bool:
    regex = ".*".join(re.escape(part) for part in expected.split(ELLIPSIS))
    return re.fullmatch(regex, actual, re.DOTALL) is not None


def text_matches(expected: str, actual: str) -> bool:
    """Line by line: "…" in a line matches anything there, a line that is only "…" any lines."""
    parts = []
    for line in expected.strip("\n").splitlines():
        if line.strip() == ELLIPSIS:
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append(".*?".join(re.escape(p) for p in line.rstrip().split(ELLIPSIS)) + r"[ \t]*\n")
    normalized = "\n".join(line.rstrip("\r") for line in actual.strip("\n").splitlines()) + "\n"
    return re.fullmatch("".join(parts), normalized, re.DOTALL) is not None


def json_documents(text: str) -> list[Any]:
    """The JSON values printed one after the other; raises ValueError when something else is there."""
    decoder, values, i = json.JSONDecoder(), list[Any](), 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i == len(text):
            return values
        value, i = decoder.raw_decode(text, i)
        values.append(value)


def errors_printed(stdout: str) -> list[str]:
    """GraphQL errors and sandbox control errors in what a block printed (one JSON value per line)."""
    found = []
    for line in stdout.splitlines():
        line = line.strip().removeprefix("data: ")
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and (value.get("errors") or "error" in value):
            found.append(line[:400])
    return found


def check_output(block: Block, stdout: str) -> None:
    if block.expected is None:
        assert not errors_printed(stdout), f"{block.where} printed errors and its page shows no output:\n{stdout[-3000:]}"
        return
    shown = block.expected
    if shown.language == "json":
        try:
            actual = json_documents(stdout)
        except ValueError:
            pytest.fail(f"{block.where} printed something that is not JSON; {shown.where} shows JSON:\n{stdout[-3000:]}")
        expected = json_documents(shown.code)
        assert len(actual) == len(expected) and all(map(shape_matches, expected, actual)), (
            f"{block.where} printed what {shown.where} does not show:\n{stdout[-3000:]}")
    else:
        assert text_matches(shown.code, stdout), f"{block.where} printed what {shown.where} does not show:\n{stdout[-3000:]}"


# --- the sandbox, and the directory a reader works in ----------------------------------------


@dataclass
class Reader:
    """Where a reader runs the examples: a directory, an environment, and one shell per page."""

    gw: str
    workdir: Path
    env: dict[str, str]
    keys: dict[str, Any]

    def state(self, page: Path) -> Path:
        return self.workdir / ".shell" / (page_name(page).replace("/", "_") + ".sh")


def free_redis_url(redis_url: str) -> str:
    """The session's throwaway Redis, on a database no other test uses."""
    return re.sub(r"/\d+$", "/7", redis_url)  # pytest-redis starts it with 8 databases


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Reader]:
    workdir = tmp_path_factory.mktemp("reader")
    venv_bin = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "GW"))}
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    example = (ROOT / "docs" / "parkgate.example.yaml").read_text(encoding="utf-8")
    shutil.copy(ROOT / "docs" / "parkgate.example.yaml", workdir / "parkgate.yaml")
    for name in sorted(set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)\}", example))):
        env[name] = f"example-{name.lower()}"
    env["REDIS_URL"] = free_redis_url(redis_url)
    env["PARKGATE_KEY_PEPPER"] = secrets.token_urlsafe(24)
    log = tmp_path_factory.mktemp("sandbox-log") / "sandbox.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen([str(Path(venv_bin) / "parkgate"), "sandbox", "--port", "0", "--keys-file", "keys.json"],
                                   cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        started = re.match(r"parkgate sandbox on (http://\S+)", first)
        assert started, f"the sandbox did not start: {first!r}\n{log.read_text(errors='replace')[-3000:]}"
        gw = started[1]
        deadline = time.monotonic() + 60
        while not (workdir / "keys.json").exists() or not healthy(gw):
            assert time.monotonic() < deadline and process.poll() is None, "the sandbox did not come up"
            time.sleep(0.2)
        time.sleep(0.2)  # keys.json is written whole before the server answers, but be kind to slow disks
        # drain the sandbox's banner so that its pipe never fills
        subprocess_drain(process)
        env["GW"] = gw
        (workdir / ".shell").mkdir()
        yield Reader(gw, workdir, env, json.loads((workdir / "keys.json").read_text()))
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def healthy(gw: str) -> bool:
    try:
        return httpx.get(f"{gw}/healthz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def subprocess_drain(process: subprocess.Popen[str]) -> None:
    import threading

    def drain() -> None:
        assert process.stdout is not None
        for _ in process.stdout:
            pass

    threading.Thread(target=drain, daemon=True).start()


# --- running one block ----------------------------------------------------------------------

#: shell variables that are bash's own, never a page's state
BASH_OWN = re.compile(r"^(BASH.*|_|PIPESTATUS|FUNCNAME|GROUPS|LINENO|RANDOM|SECONDS|SRANDOM|EPOCH.*|SHLVL|PWD|OLDPWD|"
                      r"SHELLOPTS|BASHOPTS|PPID|UID|EUID|HISTCMD|COMP_.*|DIRSTACK|OPTIND|OPTARG|IFS|PS[0-9]|HOSTNAME|"
                      r"HOSTTYPE|MACHTYPE|OSTYPE|COLUMNS|LINES|MAILCHECK)$")


def run_sh(reader: Reader, block: Block) -> subprocess.CompletedProcess[str]:
    """The block in the page's shell session: the state the previous blocks left is sourced first,
    and the variables and functions it leaves are kept for the next block (only when it succeeds)."""
    state = reader.state(block.page)
    script = (
        f"set -eo pipefail\n"
        f"[ -f {q(state)} ] && source {q(state)}\n"
        f"{block.code}\n"
        f"set +e +o pipefail\n"
        f"{{ for v in $(compgen -v); do case \" $__env_vars \" in *\" $v \"*) ;; *) echo \"$v\";; esac; done "
        f"| grep -Ev {q(BASH_OWN.pattern)} | while read -r v; do declare -p \"$v\" 2>/dev/null || true; done\n"
        f"  declare -f; }} > {q(state)}.next\n"
    )
    env = dict(reader.env, __env_vars=" ".join(reader.env))
    result = subprocess.run(["bash", "--noprofile", "--norc", "-c", script], cwd=reader.workdir, env=env,
                            capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S, check=False)
    if result.returncode == 0:
        Path(f"{state}.next").replace(state)
    return result


def q(value: object) -> str:
    return "'" + str(value).replace("'", "'\\''") + "'"


def run_python(reader: Reader, block: Block) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", block.code], cwd=reader.workdir, env=reader.env,
                          capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S, check=False)


def run_graphql(reader: Reader, block: Block) -> str:
    """What the GraphQL example answers when sent as the demo client it names; SSE for a subscription."""
    named = re.match(r"#\s*key:\s*(\S+)", block.code.lstrip())
    assert named, f"{block.where}: a runnable GraphQL example names its demo client first: `# key: driver-app`"
    key = reader.keys[named[1]]["key"]
    operation = next(d for d in parse(block.code).definitions if isinstance(d, OperationDefinitionNode))
    headers = {"authorization": f"Bearer {key}"}
    if operation.operation is not OperationType.SUBSCRIPTION:
        response = httpx.post(f"{reader.gw}/graphql", json={"query": block.code}, headers=headers, timeout=30)
        assert response.status_code == 200, f"{block.where}: HTTP {response.status_code}: {response.text[:2000]}"
        return response.text + "\n"
    received = ""
    with httpx.Client(timeout=httpx.Timeout(30, read=1.5)) as client, client.stream(
        "GET", f"{reader.gw}/graphql/stream", params={"query": block.code},
        headers=headers | {"accept": "text/event-stream"},
    ) as response:
        assert response.status_code == 200, f"{block.where}: HTTP {response.status_code}: {response.read()[:2000]!r}"
        assert response.headers["content-type"].startswith("text/event-stream"), block.where
        deadline = time.monotonic() + 3
        try:
            for chunk in response.iter_text():
                received += chunk
                if time.monotonic() > deadline:
                    break
        except httpx.ReadTimeout:
            pass  # no event in 1.5 s is fine: the subscription was accepted
    return received


# --- the tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("block", [b for b in runnable_blocks() if b.skip_reason is None], ids=lambda b: b.where)
def test_example_runs_as_written(reader: Reader, block: Block) -> None:
    """Every example not marked as not runnable (the marked ones, each with its reason, are
    accounted for below: nothing here is skipped)."""
    if block.language == "graphql":
        stdout = run_graphql(reader, block)
    else:
        result = run_sh(reader, block) if block.language == "sh" else run_python(reader, block)
        assert result.returncode == 0, (f"{block.where} exited {result.returncode}\n--- stdout\n{result.stdout[-3000:]}"
                                        f"\n--- stderr\n{result.stderr[-3000:]}")
        stdout = result.stdout
    check_output(block, stdout)


def test_every_page_has_examples_and_every_block_is_accounted_for() -> None:
    """The examples are found (a parser that finds none would pass everything), every marker gives
    a reason, every program block is runnable or marked, output blocks follow what they show, and no
    runnable example holds a date."""
    problems = []
    runnable = runnable_blocks()
    assert sum(1 for b in runnable if b.page.name == "README.md" and b.page.parent == ROOT and not b.skip_reason) >= 1
    assert sum(1 for b in runnable if not b.skip_reason) >= 40, "far fewer runnable examples than the docs hold"
    for page in PAGES:
        blocks = blocks_of(page)
        for before, block in zip([None, *blocks], blocks, strict=False):
            if block.is_output:
                if before is None or before.language not in RUNNABLE or before.expected is not block:
                    problems.append(f"{block.where}: an output block that follows no runnable example")
                if block.language not in ("json", "text"):
                    problems.append(f"{block.where}: output blocks are ```json output or ```text output")
                continue
            if block.language not in RUNNABLE | DISPLAYS and block.skip_reason is None:
                problems.append(f"{block.where}: a ```{block.language} block must be runnable (sh, graphql, python) "
                                f"or marked `_Not runnable as written: <reason>._`")
            date = DATE.search(block.code) if block.language in RUNNABLE and block.skip_reason is None else None
            if date:
                problems.append(f"{block.where}: a date in a runnable example ({date[0]}): "
                                f"compute it with `date -u`, so that it runs on any day")
    assert not problems, "\n".join(problems)


LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)")


def anchors_of(page: Path) -> set[str]:
    """The anchors GitHub makes of a page's headings: lower case, punctuation gone, spaces to dashes."""
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
            for heading in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)}


def test_links_between_pages_resolve() -> None:
    """A newcomer follows links from page to page: every relative link names a file that exists
    and, with a #fragment, a heading of it."""
    broken = []
    for page in PAGES:
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
        for match in LINK.finditer(text):
            target = match["target"]
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: not ours to check
            path, _, fragment = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page_name(page)}: {target} (no such file)")
            elif fragment and linked.suffix == ".md" and fragment not in anchors_of(linked):
                broken.append(f"{page_name(page)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


# --- the checker itself: it must fail when an example breaks ---------------------------------


@pytest.mark.parametrize(
    ("expected", "actual", "matches"),
    [
        ({"data": {"a": "…", "n": 1}}, {"data": {"a": {"b": [1]}, "n": 7.5}}, True),
        ({"data": {"a": "…"}}, {"data": {"a": 1}, "errors": [{"message": "x"}]}, False),
        ({"data": {"a": 1, "…": "…"}}, {"data": {"a": 2, "b": 3}}, True),
        ({"status": "BOOKED"}, {"status": "CANCELLED"}, False),
        ({"id": "berlin-hbf:res-…"}, {"id": "berlin-hbf:res-3b16"}, True),
        ({"id": "berlin-hbf:res-…"}, {"id": "berlin-mitte:res-3b16"}, False),
        ({"list": [{"a": 1}, "…"]}, {"list": [{"a": 2}, {"a": 3}]}, True),
        ({"list": [{"a": 1}]}, {"list": [{"a": 2}, {"a": 3}]}, False),
        ({"v": None}, {"v": 0}, False),
        ({"v": 1}, {"v": "1"}, False),
        ({"v": True}, {"v": False}, False),
    ],
)
def test_shapes(expected: Any, actual: Any, matches: bool) -> None:
    assert shape_matches(expected, actual) is matches


def test_text_shapes() -> None:
    assert text_matches("event: next\ndata: {…\"plate\":\"B-XY 1234\"…}\n",
                        'event: next\ndata: {"x":{"plate":"B-XY 1234","n":1}}\n\n')
    assert text_matches("200 …\n…\nlast\n", "200 200\nmiddle\nmore\nlast\n")
    assert not text_matches("Journal No,Journal Date\n", "Journal No;Journal Date\n")
    assert not text_matches("a\nb\n", "a\nb\nc\n")


def test_a_broken_example_fails(reader: Reader, tmp_path: Path) -> None:
    """Examples that break are caught: a command that fails, a GraphQL error nobody shows, an
    answer unlike the one shown."""
    page = tmp_path / "broken.md"
    page.write_text(
        "```sh\nfalse\necho never\n```\n\n"
        "```sh\ncurl -s $GW/graphql -H 'content-type: application/json' -d '{\"query\": \"{ nosuchfield }\"}'\n```\n\n"
        "```sh\ncurl -s $GW/healthz\n```\n\n```json output\n{\"status\": \"down\"}\n```\n",
        encoding="utf-8")
    fails, errors_unshown, unlike = [b for b in blocks_of(page) if not b.is_output]
    assert run_sh(reader, fails).returncode != 0
    with pytest.raises(AssertionError, match="printed errors"):
        check_output(errors_unshown, run_sh(reader, errors_unshown).stdout)
    healthz = run_sh(reader, unlike)
    assert healthz.returncode == 0
    with pytest.raises(AssertionError, match="does not show"):
        check_output(unlike, healthz.stdout)
