"""The official client of monitor-server-api as the oracle of monitor-server's compatibility.

    official_client.py make DIR          runs a small suite under pytest-monitor in DIR, four times
                                         (four sessions), and adds a second machine to DIR/.pymon
    official_client.py check PYMON URL   calls every public method of monitor_api's Monitor on
                                         PYMON (local dialect) and on URL (remote dialect, a
                                         monitor-server holding PYMON imported) and requires equal
                                         results

Run by tests/e2e/official_client.rs with the venv's python (pytest-monitor 1.6.6 and
monitor-server-api 1.1.0). `check` prints one line per method and `N of M client methods agree`;
it exits 1 when a call differs that is not an expected difference, or when an expected
difference has gone (so the list below stays true).
"""

import datetime
import inspect
import os
import sqlite3
import subprocess
import sys

# The tests sit in a package: pytest-monitor writes a module-scope metric's ITEM_PATH as the
# module's package, which is empty for a top-level test module, and monitor-server refuses an
# empty item_path.
SUITE = {
    "checks/__init__.py": "",
    "checks/test_alpha.py": '''
import pytest

pytest_monitor_component = "alpha"


@pytest.mark.parametrize("size", [1, 2, 3])
def test_param(size):
    assert len("x" * size) == size


def test_sum():
    assert sum(range(1000)) == 499500
''',
    "checks/test_beta.py": '''
pytest_monitor_component = "beta"


class TestGroup:
    def test_sorted(self):
        assert sorted([3, 1, 2]) == [1, 2, 3]

    def test_join(self):
        assert "-".join("ab") == "a-b"
''',
    "checks/test_plain.py": '''
def test_plain():
    assert "monitor" in "pytest-monitor"
''',
}

# The variables by which pytest-monitor recognises a CI system (pytest_monitor/sys_utils.py),
# removed so that only the ones a run sets tag its session.
CI_VARIABLES = [
    "BUILD_NUMBER", "BRANCH_NAME", "JOB_NAME", "CIRCLE_JOB", "CIRCLE_BUILD_NUM",
    "TRAVIS_BUILD_NUMBER", "TRAVIS_BUILD_ID", "DRONE_REPO_BRANCH", "DRONE_BUILD_NUMBER",
    "CI_JOB_NAME", "CI_PIPELINE_ID",
]

# (CI variables, extra pytest arguments): GitLab builds 101 and 102 of `main` (on two commits),
# Jenkins build 7 of `nightly`, and a run outside CI with a component prefix.
RUNS = [
    ({"CI_JOB_NAME": "main", "CI_PIPELINE_ID": "101"}, ["--tag", "team=core"]),
    ({"CI_JOB_NAME": "main", "CI_PIPELINE_ID": "102"}, ["--tag", "team=core"]),
    ({"JOB_NAME": "nightly", "BUILD_NUMBER": "7"}, ["--tag", "team=infra"]),
    ({}, ["--component-prefix", "proj", "--tag", "team=infra", "--tag", "os=linux"]),
]

SECOND_MACHINE = "second-machine.example"


def git(suite, *args):
    subprocess.run(["git", *args], cwd=suite, check=True, capture_output=True)


def make(suite):
    os.makedirs(os.path.join(suite, "checks"), exist_ok=True)
    for name, text in SUITE.items():
        with open(os.path.join(suite, name), "w") as f:
            f.write(text)
    with open(os.path.join(suite, "pytest.ini"), "w") as f:
        f.write("[pytest]\n")
    # A git work tree, so that each session has an SCM reference (`git rev-parse HEAD`).
    git(suite, "init", "-q")
    identity = ["-c", "user.name=e2e", "-c", "user.email=e2e@example.com"]
    git(suite, *identity, "commit", "-q", "--allow-empty", "-m", "first")
    for n, (ci, extra) in enumerate(RUNS):
        if n == 1:
            git(suite, *identity, "commit", "-q", "--allow-empty", "-m", "second")
        env = {k: v for k, v in os.environ.items() if k not in CI_VARIABLES}
        for var in ["PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTHONPATH"]:
            env.pop(var, None)
        env.update(ci)
        env.update(PYTHONDONTWRITEBYTECODE="1", PYTEST_MONITOR_FORCE_CPU_FREQ="1",
                   PYTEST_MONITOR_CPU_FREQ="2400")
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--color=no",
             "--restrict-scope-to", "function,module", "--description", f"run {n + 1}",
             *extra],
            cwd=suite, env=env, capture_output=True, text=True, timeout=240)
        if done.returncode != 0 or "7 passed" not in done.stdout:
            sys.exit(f"pytest run {n + 1} failed:\n{done.stdout}\n{done.stderr}")
    add_second_machine(os.path.join(suite, ".pymon"))


def add_second_machine(pymon):
    """A copy of the one execution context under another hash and machine name, and a copy of
    the first session's function metrics measured on it (pytest-monitor cannot be told to
    report another machine)."""
    cnx = sqlite3.connect(pymon)
    with cnx:
        (env_h,) = cnx.execute("SELECT ENV_H FROM EXECUTION_CONTEXTS").fetchone()
        other = "f" * 8 + env_h[8:]
        cnx.execute(
            "INSERT INTO EXECUTION_CONTEXTS SELECT ?, CPU_COUNT, CPU_FREQUENCY_MHZ, CPU_TYPE, "
            "CPU_VENDOR, RAM_TOTAL_MB * 2, ?, MACHINE_TYPE, MACHINE_ARCH, SYSTEM_INFO, "
            "PYTHON_INFO FROM EXECUTION_CONTEXTS WHERE ENV_H = ?",
            (other, SECOND_MACHINE, env_h))
        (first,) = cnx.execute("SELECT SESSION_H FROM TEST_SESSIONS ORDER BY RUN_DATE").fetchone()
        cnx.execute(
            "INSERT INTO TEST_METRICS SELECT SESSION_H, ?, ITEM_START_TIME, ITEM_PATH, ITEM, "
            "ITEM_VARIANT, ITEM_FS_LOC, KIND, COMPONENT, TOTAL_TIME * 1.5, USER_TIME, "
            "KERNEL_TIME, CPU_USAGE, MEM_USAGE + 1 FROM TEST_METRICS "
            "WHERE SESSION_H = ? AND KIND = 'function'",
            (other, first))
    cnx.close()


# ------------------------------------------------------------------------------------- check

# Calls whose results differ because the client is wrong, not the server, each (method, case):
# mostly the local dialect's SQL (the remote dialect, which asks the server, gives what the data
# holds), and the remote dialect's reading of contexts, which fails against monitor-server-api
# itself in the same way.
CONTEXT_KEY = (
    "The remote dialect reads a context's hash from `context_h`, but monitor-server-api (and so "
    "monitor-server) answers it as `h`: the client raises KeyError against either server.")
EXPECTED_DIFFERENCES = {
    ("get_context", "known"): CONTEXT_KEY,
    ("list_contexts", "all"): CONTEXT_KEY,
    ("list_contexts_from", "variant metrics"): CONTEXT_KEY,
    ("list_components", "all"):
        "Local selects DISTINCT(COMPONENT) with no filter, so it lists the empty component; the "
        "method is documented as 'non empty components' and its own count_components leaves "
        "it out.",
    ("list_component_pipelines", "proj.alpha"):
        "Local joins TEST_SESSIONS and TEST_METRICS without M.SESSION_H = S.SESSION_H: any "
        "component that exists gets every pipeline of every session; proj.alpha only ran "
        "outside CI.",
    ("list_component_pipeline_builds", "proj.alpha/main"):
        "The same missing join condition: every build of the pipeline, whatever the component.",
    ("list_sessions", "two tags, method left out"):
        "Local combines the conditions with AND when no method is given; the server's "
        "documented default (monitor-server-api's too) is match_any.",
}


def as_plain(value):
    """A value of the client made comparable: entities to dicts, collections to sorted lists."""
    from monitor_api.core.collections import Contexts, Metrics, Sessions
    from monitor_api.core.entities import Context, Metric, Session

    if value is None or isinstance(value, (int, float, str)):
        return value
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, Metric):
        return tuple(sorted((k, as_plain(v)) for k, v in value.to_dict().items()))
    if isinstance(value, Context):
        return tuple(sorted((k, as_plain(v)) for k, v in value.to_dict().items()))
    if isinstance(value, Session):
        fields = {"h": value.h, "scm": value.scm, "run_date": as_plain(value.start_date)}
        tags = value.tags
        # The remote dialect passes the server's `tags` through: a list of {name, value}, as
        # monitor-server-api answers it; the local one parses RUN_DESCRIPTION into a dict.
        if isinstance(tags, list):
            tags = {t["name"]: t["value"] for t in tags}
        fields["tags"] = tuple(sorted((k, str(v)) for k, v in (tags or {}).items()))
        return tuple(sorted(fields.items()))
    if isinstance(value, Metrics):
        return sorted(as_plain(m) for m in value)
    if isinstance(value, (Sessions, Contexts)):
        return sorted((k, as_plain(v)) for k, v in value.items())
    if isinstance(value, list):
        return sorted(as_plain(v) for v in value)
    raise TypeError(f"cannot compare a {type(value).__name__}: {value!r}")


def outcome(call, monitor, plain):
    """What a call gives, made comparable, or the exception it raised."""
    try:
        return plain(call(monitor))
    except Exception as err:  # a client failure is a result to compare, not a crash
        return ("raised", type(err).__name__, str(err))


def ranked_values(resource):
    """A ranking compared by the values ranked: tests tied at the cut may be either."""
    def plain(metrics):
        field = {"total_time": "wall_time", "user_time": "user_time",
                 "kernel_time": "kernel_time", "cpu_usage": "cpu_usage",
                 "mem_usage": "memory_usage"}[resource.value]
        return sorted(getattr(m, field) for m in metrics)
    return plain


def cases(local):
    """For each public method of Monitor: (case, arguments, how to compare) read off the data,
    so every branch of each method is taken at least once."""
    from monitor_api.enums import MetricScope, ResourceMethod, ResourceType

    metrics = local.list_metrics()
    sessions = local.list_sessions()
    contexts = local.list_contexts()
    first_session = sorted(sessions.values(), key=lambda s: s.start_date)[0]
    session_h = first_session.h
    scm = first_session.scm
    context_h = sorted(contexts)[0]
    variant = "test_param[2]"
    ranked = []
    for resource in ResourceType:
        for method in ResourceMethod:
            ranked.append((f"{resource.name} {method.name}", resource, method))

    plain = as_plain
    table = {
        "count_components": [("all", (), {}, plain)],
        "list_components": [("all", (), {}, plain)],
        "list_component_pipelines": [
            ("alpha", ("alpha",), {}, plain),
            ("proj.alpha", ("proj.alpha",), {}, plain),
        ],
        "list_component_pipeline_builds": [
            ("alpha/main", ("alpha", "main"), {}, plain),
            ("proj.alpha/main", ("proj.alpha", "main"), {}, plain),
        ],
        "list_component_metrics": [
            ("alpha", ("alpha",), {}, plain),
            ("without a component", (), {}, plain),
        ],
        "count_contexts": [("all", (), {}, plain)],
        "list_contexts": [("all", (), {}, plain)],
        "get_context": [
            ("known", (context_h,), {}, plain),
            ("unknown", ("0" * 64,), {}, plain),
        ],
        "list_context_metrics": [("known", (context_h,), {}, plain)],
        "count_metrics": [
            ("all", (), {}, plain),
            ("session", (), {"session_h": session_h}, plain),
            ("context", (), {"context_h": context_h}, plain),
            ("scm", (), {"scm_ref": scm}, plain),
        ],
        "list_item_metrics": [("test_param", ("test_param",), {}, plain)],
        "list_metrics": [("all", (), {}, plain)],
        "list_metrics_by_type": [
            (scope.name, (scope,), {}, plain) for scope in MetricScope
        ],
        "list_metrics_by_scm_id": [("scm", (scm,), {}, plain)],
        "list_metrics_from_pattern": [
            ("item", (), {"item": "test_s"}, plain),
            ("variant", (), {"variant": "test_param["}, plain),
        ],
        "list_metrics_of_variant": [
            ("any component", (variant,), {}, plain),
            ("component", (variant,), {"component": "alpha"}, plain),
        ],
        "count_sessions": [("all", (), {}, plain)],
        "list_sessions": [
            ("all", (), {}, plain),
            ("one tag with a value", (), {"with_tags": ["pipeline_branch"],
                                          "restrict_flags": ["main"]}, plain),
            ("two tags, match_any", (), {"with_tags": "team,pipeline_branch",
                                         "restrict_flags": "infra,main",
                                         "method": "match_any"}, plain),
            ("two tags, match_all", (), {"with_tags": ["team", "pipeline_branch"],
                                         "restrict_flags": ["core", ""],
                                         "method": "match_all"}, plain),
            ("two tags, method left out", (), {"with_tags": ["team", "pipeline_branch"],
                                               "restrict_flags": ["infra", "main"]}, plain),
        ],
        "list_session_metrics": [("first", (session_h,), {}, plain)],
        "get_session": [
            ("known", (session_h,), {}, plain),
            ("unknown", ("0" * 32,), {}, plain),
        ],
        "list_pipelines": [("all", (), {}, plain)],
        "list_pipeline_builds": [
            ("main", ("main",), {}, plain),
            ("nightly", ("nightly",), {}, plain),
        ],
        "list_metrics_resources": [
            (name, (resource, method, 5), {}, ranked_values(resource))
            for name, resource, method in ranked
        ],
        "list_metrics_resources_from_component": [
            (name, ("alpha", resource, method, 3), {}, ranked_values(resource))
            for name, resource, method in ranked
        ],
        "list_metrics_resources_from_pipeline": [
            (name, ("main", resource, method, 4), {}, ranked_values(resource))
            for name, resource, method in ranked
        ],
        "list_metrics_resources_from_build": [
            (name, ("main", "101", resource, method, 4), {}, ranked_values(resource))
            for name, resource, method in ranked
        ],
        "list_metrics_from": [
            ("sessions", (), {"sessions": {session_h: first_session}}, plain),
            ("contexts", (), {"contexts": {context_h: contexts[context_h]}}, plain),
        ],
        "list_sessions_from": [("variant metrics", ("METRICS_OF_VARIANT",), {}, plain)],
        "list_contexts_from": [("variant metrics", ("METRICS_OF_VARIANT",), {}, plain)],
        "list_build_sessions": [
            ("main/102", ("main", "102"), {}, plain),
            ("nightly/7", ("nightly", "7"), {}, plain),
        ],
    }
    assert metrics, "the .pymon holds no metric"
    return table, variant


def check(pymon, url):
    from monitor_api.monitor import Monitor

    local = Monitor(pymon)
    remote = Monitor(url)
    table, variant = cases(local)
    public = sorted(name for name, _ in inspect.getmembers(Monitor, inspect.isfunction)
                    if not name.startswith("_"))
    untested = sorted(set(public) - set(table))
    unknown = sorted(set(table) - set(public))
    if untested or unknown:
        sys.exit(f"methods of Monitor without a case: {untested}; cases of no method: {unknown}")

    agree, differ, surprises = [], [], []
    seen_expected = set()
    for name in public:
        method_agrees = True
        for case, args, kwargs, plain in table[name]:
            def call(monitor):
                # list_sessions_from and list_contexts_from take a Metrics of their own dialect.
                if args == ("METRICS_OF_VARIANT",):
                    return getattr(monitor, name)(monitor.list_metrics_of_variant(variant))
                return getattr(monitor, name)(*args, **kwargs)
            mine, theirs = outcome(call, remote, plain), outcome(call, local, plain)
            empty = mine in (None, [], 0, -1)
            expected = (name, case) in EXPECTED_DIFFERENCES
            if mine == theirs:
                if expected:
                    surprises.append(f"{name} ({case}): expected to differ, but both dialects "
                                     f"agree: {EXPECTED_DIFFERENCES[(name, case)]}")
                elif empty and case not in ("unknown", "PACKAGE"):
                    surprises.append(f"{name} ({case}): both dialects answer nothing, so the "
                                     "case tests nothing")
                continue
            method_agrees = False
            if expected:
                seen_expected.add((name, case))
                differ.append(f"{name} ({case}): {EXPECTED_DIFFERENCES[(name, case)]}")
            else:
                surprises.append(f"{name} ({case}) differs:\n  remote: {mine!r}\n"
                                 f"  local:  {theirs!r}")
        (agree if method_agrees else []).append(name)

    print(f"{len(agree)} of {len(public)} client methods agree between the dialects")
    for line in differ:
        print(f"expected difference: {line}")
    for line in surprises:
        print(f"UNEXPECTED: {line}")
    return 1 if surprises else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "make":
        make(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2], sys.argv[3]))
    else:
        sys.exit(__doc__)
