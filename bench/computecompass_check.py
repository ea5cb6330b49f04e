"""The ComputeCompass client itself, run over a publication: the outside judge of our files.

    .venv/bin/python bench/computecompass_check.py CLIENT_CHECKOUT PUBLICATION \
        [--workdir DIR] [--keep]

CLIENT_CHECKOUT is a checkout of github.com/scttfrdmn/computecompass (never part of this
repository); PUBLICATION is the output of `instbench publish` (the directory holding
`latest/`, or `latest/` itself). The script:

1. copies the client's tracked files (no .git, no node_modules) into a work directory
   outside this repository (a temporary one unless --workdir) and installs its npm
   dependencies: `npm ci` from its lockfile, and when that fails (the lockfile pins
   packages the registry no longer serves) `npm install` from package.json. With
   --workdir the installation is reused while package.json and the lockfile are unchanged;
2. puts our three files, the required fields of the contract table
   (instbench.analysis.compass_contract) and `computecompass_check.test.tsx` (beside this
   script) into the copy's `src/__instbench__/`, and runs it with the client's vitest
   and jsdom: the client's loader with only `fetch` replaced, its insight functions and
   its InstanceCard component over every type of every file;
3. type-checks our three files against the client's declared types (`tsc --noEmit`,
   resolveJsonModule: each file assigned to its `BenchmarkDatabase` member).

Prints one line per type and exits 1 on any throw, NaN, undefined or type error (2 on bad
arguments). Nothing of the client is written into this repository.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from instbench.analysis import compass_contract
from instbench.analysis.compass_schema import CPU_FILE, MEMORY_FILE, PRICE_FILE

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TEMPLATE = HERE / "computecompass_check.test.tsx"
FILES = {"memory": MEMORY_FILE, "cpu": CPU_FILE, "pricing": PRICE_FILE}
CHECK_DIR = "src/__instbench__"
STAMP = ".instbench-npm-stamp"

CONTRACT_TS = """\
// Our three files against the client's declared types (written by computecompass_check.py).
import type { BenchmarkDatabase } from '../services/benchmark-data'
import memory from './data/memory-benchmarks.json'
import cpu from './data/cpu-benchmarks.json'
import pricing from './data/price-performance.json'

export const memoryFile: BenchmarkDatabase['memory'] = memory
export const cpuFile: NonNullable<BenchmarkDatabase['cpu']> = cpu
export const pricingFile: NonNullable<BenchmarkDatabase['pricing']> = pricing
"""

TSCONFIG = {
    "compilerOptions": {
        "target": "ES2022",
        "lib": ["ES2022", "DOM", "DOM.Iterable"],
        "module": "ESNext",
        "moduleResolution": "bundler",
        "resolveJsonModule": True,
        "skipLibCheck": True,
        "strict": True,
        "noEmit": True,
        "jsx": "react-jsx",
    },
    "files": [f"{CHECK_DIR}/contract.ts"],
}


class CheckError(Exception):
    """Bad arguments or an environment the check cannot run in (exit 2)."""


def _run(cmd: list[str], cwd: Path, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def latest_dir(publication: Path) -> Path:
    """The directory holding the three files: PUBLICATION/latest or PUBLICATION itself."""
    for candidate in (publication / "latest", publication):
        if (candidate / MEMORY_FILE).is_file():
            return candidate
    raise CheckError(f"no {MEMORY_FILE} under {publication}: pass `instbench publish`'s output")


def copy_client(client: Path, target: Path) -> None:
    """The client's tracked files (git ls-files when it is a git checkout) into `target`."""
    if (
        not (client / "package.json").is_file()
        or not (client / "src/services/benchmark-data.ts").is_file()
    ):
        raise CheckError(f"{client} is not a ComputeCompass checkout (no package.json or loader)")
    listed = _run(["git", "ls-files", "-z"], client, 120)
    if listed.returncode == 0 and listed.stdout:
        names = [n for n in listed.stdout.split("\0") if n]
    else:
        names = [
            p.relative_to(client).as_posix()
            for p in client.rglob("*")
            if p.is_file() and not {".git", "node_modules"} & set(p.relative_to(client).parts)
        ]
    for name in names:
        source = client / name
        if source.is_file():
            dest = target / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest)


def _deps_digest(root: Path) -> str:
    h = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        path = root / name
        h.update(path.read_bytes() if path.is_file() else b"-")
    return h.hexdigest()


def install(root: Path, client: Path) -> str:
    """Install the client's dependencies in `root`; how it was done, in a few words."""
    digest = _deps_digest(client)
    stamp = root / STAMP
    if (root / "node_modules").is_dir() and stamp.is_file() and stamp.read_text() == digest:
        return "node_modules reused (package.json and lockfile unchanged)"
    npm = shutil.which("npm")
    if npm is None:
        raise CheckError("npm is not installed: install Node.js 20 and npm")
    flags = ["--no-audit", "--no-fund", "--ignore-scripts"]
    how = "npm ci"
    done = _run([npm, "ci", *flags], root)
    if done.returncode != 0:
        reason = next(
            (ln for ln in done.stderr.splitlines() if "404" in ln or "ERR" in ln.upper()), ""
        )
        print(f"npm ci failed ({reason.strip()[:160]}); npm install from package.json")
        (root / "package-lock.json").unlink(missing_ok=True)
        shutil.rmtree(root / "node_modules", ignore_errors=True)
        done = _run([npm, "install", *flags], root)
        how = "npm install from package.json (npm ci failed on the lockfile)"
    if done.returncode != 0:
        raise CheckError(f"installing the client's dependencies failed: {done.stderr[-600:]}")
    stamp.write_text(digest)
    return how


def stage(root: Path, latest: Path) -> None:
    """Our files, the contract's required fields, the test and the type check, in the copy."""
    check = root / CHECK_DIR
    shutil.rmtree(check, ignore_errors=True)
    (check / "data").mkdir(parents=True)
    for name in FILES.values():
        source = latest / name
        if source.is_file():
            shutil.copy2(source, check / "data" / name)
    contract = {
        part: [f.name for f in compass_contract.required_per_type(name)]
        for part, name in FILES.items()
    }
    (check / "contract.json").write_text(json.dumps(contract, indent=2))
    shutil.copy2(TEMPLATE, check / "compass.test.tsx")
    (check / "contract.ts").write_text(CONTRACT_TS)
    (root / "tsconfig.instbench.json").write_text(json.dumps(TSCONFIG, indent=2))


def run_vitest(root: Path) -> tuple[int, dict[str, Any] | None, str]:
    done = _run(["npx", "vitest", "run", f"{CHECK_DIR}/compass.test.tsx"], root)
    report_path = root / CHECK_DIR / "report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else None
    return done.returncode, report, done.stdout + done.stderr


def run_tsc(root: Path, latest: Path) -> list[str]:
    missing = [n for n in FILES.values() if not (latest / n).is_file()]
    if missing:
        return [f"{n}: not published" for n in missing]
    done = _run(["npx", "tsc", "-p", "tsconfig.instbench.json"], root)
    if done.returncode == 0:
        return []
    lines = [ln for ln in (done.stdout + done.stderr).splitlines() if ln.strip()]
    return lines or [f"tsc exited with {done.returncode}"]


def check(client: Path, publication: Path, workdir: Path) -> int:
    latest = latest_dir(publication)
    root = workdir / "client"
    if (root / "node_modules").is_dir():
        # Keep the installation; refresh the client's own files.
        for child in root.iterdir():
            if child.name not in ("node_modules", STAMP, "package-lock.json"):
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    root.mkdir(parents=True, exist_ok=True)
    copy_client(client, root)
    print(f"client: {client} copied to {root}")
    print(f"dependencies: {install(root, client)}")
    stage(root, latest)
    counts = {}
    for part, name in FILES.items():
        path = latest / name
        counts[part] = len(json.loads(path.read_text())["instances"]) if path.is_file() else 0
    index_path = latest / "index.json"
    held = json.loads(index_path.read_text()).get("heldBack", {}) if index_path.is_file() else {}
    print(
        f"publication: {latest} ({', '.join(f'{FILES[p]} {n} types' for p, n in counts.items())})"
    )
    code, report, output = run_vitest(root)
    failures = 0
    if report is None:
        print("vitest wrote no report:")
        print(output[-3000:])
        return 1
    for line in report["types"]:
        files = " ".join(f"{part}={state}" for part, state in line["files"].items())
        status = "ok" if not line["problems"] else "FAIL"
        print(f"{status:4} {line['type']:<16} {files} insights={line['insights']}")
        for problem in line["problems"]:
            print(f"       {problem}")
        failures += bool(line["problems"])
    for name, types in sorted(held.items()):
        for itype, missing in sorted(types.items()):
            print(f"held {itype:<16} from {name}: {', '.join(missing)}")
    service = report.get("service", [])
    print(
        f"compareInstances / getTopPerformers / hasBenchmarkData: {'ok' if not service else 'FAIL'}"
    )
    for problem in service:
        print(f"       {problem}")
    rendered = {p: sum(ln["files"][p] == "rendered" for ln in report["types"]) for p in FILES}
    for part, n in counts.items():
        if rendered[part] != n:
            print(f"FAIL {FILES[part]}: {n} types in the file, {rendered[part]} rendered")
            failures += 1
    if code != 0 and not failures and not service:
        print("vitest failed:")
        print(output[-3000:])
        failures += 1
    tsc_lines = run_tsc(root, latest)
    type_errors = [ln for ln in tsc_lines if "error TS" in ln] or tsc_lines
    print(f"tsc --noEmit (our files as the client's declared types): {len(type_errors)} errors")
    for line in tsc_lines:
        print(f"       {line}")
    total = failures + len(service) + len(type_errors)
    print(
        f"types: {len(report['types'])}, failing: {failures}, service problems: {len(service)}, "
        f"type errors: {len(type_errors)} -> {'PASS' if total == 0 else 'FAIL'}"
    )
    return 0 if total == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("client", type=Path, help="checkout of github.com/scttfrdmn/computecompass")
    parser.add_argument("publication", type=Path, help="`instbench publish` output directory")
    parser.add_argument("--workdir", type=Path, help="reusable work directory (outside the repo)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work directory")
    args = parser.parse_args(argv)
    try:
        client = args.client.resolve()
        if args.workdir is not None:
            workdir = args.workdir.resolve()
            if workdir.is_relative_to(REPO):
                raise CheckError(f"--workdir {workdir} is inside this repository: pick one outside")
            workdir.mkdir(parents=True, exist_ok=True)
            return check(client, args.publication.resolve(), workdir)
        tmp = Path(tempfile.mkdtemp(prefix="computecompass-check-"))
        try:
            return check(client, args.publication.resolve(), tmp)
        finally:
            if args.keep:
                print(f"work directory kept: {tmp}")
            else:
                shutil.rmtree(tmp, ignore_errors=True)
    except CheckError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
