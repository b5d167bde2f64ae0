# SPDX-License-Identifier: MIT
"""Run deploy/Containerfile's build stage on this host, and check the runtime stage.

No container engine is needed: the build host is Debian 12 like the image,
so the build stage's own commands run here as written.

- The files the build stage COPYs, and only those, are copied to a scratch
  /src; the RUN line that builds and installs is taken from the
  Containerfile, its /build and /staging paths moved into the scratch
  directory, and run.
- The installed tree must hold what the runtime stage COPYs: the worker
  and the bundled handler files.
- Every shared library the worker and the handlers need (ldd) must come
  from a package the runtime stage installs (deploy/runtime-packages.txt,
  the lines of this host's Debian release), from one of their
  dependencies, or from the base image's required packages.
- The package lists: the build stage installs deploy/build-packages.txt
  and names no package of its own; scripts/debian13.sh (the test suite's
  Debian 13 root) installs the same file; scripts/setup-deps.sh installs
  all of it on the host; every runtime list names existing packages of
  its release when run in that release.

    python check_container_build.py --source DIR
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

ARGS = None


def stages(text):
    text = text.replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        if re.match(r"^\s*FROM\s", line):
            out.append([])
        if out:
            out[-1].append(line)
    return out


def apt_packages(stage_lines):
    pkgs = set()
    for line in stage_lines:
        m = re.search(r"apt-get install\s+(.*?)(?:&&|$)", line)
        if m:
            pkgs |= {w for w in m.group(1).split() if not w.startswith("-")}
    return pkgs


def list_lines(path):
    with open(path) as f:
        return [l.split("#", 1)[0].split() for l in f if l.split("#", 1)[0].strip()]


def host_release():
    with open("/etc/os-release") as f:
        for line in f:
            if line.startswith("VERSION_CODENAME="):
                return line.strip().split("=", 1)[1].strip('"')
    return None


def runtime_packages(release, images):
    """deploy/runtime-packages.txt's packages of `release` for the given images."""
    out = set()
    for cols in list_lines(os.path.join(ARGS.source, "deploy", "runtime-packages.txt")):
        if len(cols) != 3:
            raise ValueError("runtime-packages.txt: want PACKAGE RELEASE IMAGE, got %r" % cols)
        if cols[1] in ("any", release) and cols[2] in images:
            out.add(cols[0])
    return out


def build_packages():
    return {c[0] for c in list_lines(os.path.join(ARGS.source, "deploy", "build-packages.txt"))}


def dpkg_owner(path):
    real = os.path.realpath(path)
    for candidate in (path, real, real.replace("/usr/lib/", "/lib/", 1),
                      real.replace("/lib/", "/usr/lib/", 1)):
        r = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split(":")[0].strip()
    return None


def recursive_depends(pkgs):
    r = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends",
                        "--no-suggests", "--no-conflicts", "--no-breaks", "--no-replaces",
                        "--no-enhances", "--installed"] + sorted(pkgs),
                       capture_output=True, text=True)
    deps = set(pkgs)
    for line in r.stdout.splitlines():
        m = re.match(r"^\s*(?:\|)?(?:Pre)?Depends:\s*<?([^\s>:]+)", line)
        if m:
            deps.add(m.group(1))
        elif line and not line.startswith(" "):
            deps.add(line.strip().split(":")[0])
    return deps


def required_packages():
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Priority} ${Essential}\n"],
                       capture_output=True, text=True)
    out = set()
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and (parts[1] == "required" or "yes" in parts[2:]):
            out.add(parts[0])
    return out


class ContainerBuild(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(os.path.join(ARGS.source, "deploy", "Containerfile")) as f:
            cls.stages = stages(f.read())
        cls.build, cls.runtime = cls.stages[0], cls.stages[-1]
        cls.tmp = tempfile.TemporaryDirectory(prefix="hookd-image-")
        root = cls.tmp.name
        src = os.path.join(root, "src")
        os.makedirs(src)
        # COPY SRC DST as the engine does it, relative to WORKDIR /src: a
        # directory's contents go into DST, a file into DST/.
        for line in cls.build:
            m = re.match(r"^\s*COPY\s+(?!--)(\S+)\s+(\S+)\s*$", line)
            if not m:
                continue
            source = os.path.join(ARGS.source, m.group(1))
            dest = os.path.normpath(os.path.join(src, m.group(2)))
            if os.path.isdir(source):
                shutil.copytree(source, dest, dirs_exist_ok=True)
            else:
                os.makedirs(dest, exist_ok=True)
                shutil.copy2(source, dest)
        cmd = next(l for l in cls.build if "cmake -S" in l)
        cmd = re.sub(r"^\s*RUN\s+", "", cmd)
        cmd = cmd.replace(" /build", " " + os.path.join(root, "build")) \
                 .replace("/staging", os.path.join(root, "staging"))
        cls.staging = os.path.join(root, "staging")
        cls.result = subprocess.run(["bash", "-euo", "pipefail", "-c", cmd], cwd=src,
                                    capture_output=True, text=True, timeout=1800)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_build_stage_commands_succeed(self):
        self.assertEqual(self.result.returncode, 0,
                         self.result.stdout[-3000:] + self.result.stderr[-3000:])

    def copied_into_runtime(self):
        """(staging source, image destination) of the runtime's COPY --from lines."""
        out = []
        for line in self.runtime:
            m = re.match(r"^\s*COPY\s+--from=\S+\s+(\S+)\s+(\S+)\s*$", line)
            if m:
                out.append((m.group(1), m.group(2)))
        return out

    def test_runtime_copies_exist(self):
        self.assertEqual(self.result.returncode, 0)
        copies = self.copied_into_runtime()
        self.assertTrue(copies)
        for srcp, _ in copies:
            path = os.path.join(self.staging, srcp.replace("/staging/", "", 1))
            self.assertTrue(os.path.exists(path), srcp)
        exe = os.path.join(self.staging, "usr/bin/acme-hookd")
        self.assertTrue(os.access(exe, os.X_OK))
        handlers = [f for f in os.listdir(os.path.join(self.staging, "usr/lib/acme-hookd"))
                    if f.endswith(".so")]
        self.assertIn("hookd_skeleton.so", handlers)
        r = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_build_packages_are_one_list(self):
        """The build stage, the Debian 13 root and setup-deps.sh share deploy/build-packages.txt."""
        pkgs = build_packages()
        self.assertIn("librdkafka-dev", pkgs)
        text = "\n".join(self.build)
        self.assertIn("source=deploy/build-packages.txt", text)
        # The build stage's apt-get install reads the list and names nothing else.
        self.assertEqual(apt_packages(self.build), {"$(sed", "'s/#.*//'", "/tmp/build-packages.txt)"})
        with open(os.path.join(ARGS.source, "scripts", "debian13.sh")) as f:
            self.assertIn("deploy/build-packages.txt", f.read())
        with open(os.path.join(ARGS.source, "scripts", "setup-deps.sh")) as f:
            m = re.search(r"APT_BUILD=\((.*?)\)", f.read(), re.S)
        self.assertIsNotNone(m)
        self.assertEqual(pkgs - set(m.group(1).split()), set(), "setup-deps.sh misses build packages")

    def test_runtime_stages_read_the_release_list(self):
        text = "\n".join(self.runtime)
        self.assertIn("source=deploy/runtime-packages.txt", text)
        self.assertIn("VERSION_CODENAME", text)
        for release in ("bookworm", "trixie"):
            for image in ("runtime", "python"):
                self.assertTrue(runtime_packages(release, {image}), (release, image))
        # Every package of this host's release exists here (apt knows it).
        release = host_release()
        pkgs = runtime_packages(release, {"runtime", "python"})
        r = subprocess.run(["apt-cache", "show", "--no-all-versions"] + sorted(pkgs),
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, "%s: %s" % (release, r.stderr))
        shown = set(re.findall(r"^Package: (\S+)$", r.stdout, re.M))
        self.assertEqual(pkgs - shown, set(), release)

    def test_runtime_libraries_come_from_runtime_packages(self):
        self.assertEqual(self.result.returncode, 0)
        wanted = runtime_packages(host_release(), {"runtime"})
        self.assertFalse([p for p in wanted if p.endswith("-dev")], wanted)
        allowed = recursive_depends(wanted) | required_packages()
        files = [os.path.join(self.staging, "usr/bin/acme-hookd")]
        hdir = os.path.join(self.staging, "usr/lib/acme-hookd")
        files += [os.path.join(hdir, f) for f in os.listdir(hdir) if f.endswith(".so")]
        missing = {}
        for f in files:
            r = subprocess.run(["ldd", f], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            for line in r.stdout.splitlines():
                m = re.search(r"=>\s+(/\S+)", line)
                if not m:
                    self.assertNotIn("not found", line)
                    continue
                pkg = dpkg_owner(m.group(1))
                if pkg is None or pkg.split(":")[0] not in allowed:
                    missing.setdefault(os.path.basename(f), []).append((m.group(1), pkg))
        self.assertEqual(missing, {}, "libraries not provided by the runtime stage's packages")

    def test_default_image_has_no_interpreter(self):
        """The python handler and libpython only in the runtime-python target."""
        self.assertEqual(self.result.returncode, 0)
        self.assertFalse([p for p in runtime_packages(host_release(), {"runtime"}) if "python" in p])
        files = [os.path.join(self.staging, "usr/bin/acme-hookd")]
        hdir = os.path.join(self.staging, "usr/lib/acme-hookd")
        files += [os.path.join(hdir, f) for f in os.listdir(hdir) if f.endswith(".so")]
        self.assertNotIn("hookd_python.so", os.listdir(hdir))
        for f in files:
            r = subprocess.run(["ldd", f], capture_output=True, text=True)
            self.assertNotIn("libpython", r.stdout, f)
        named = {re.search(r"\sAS\s+(\S+)", s[0]).group(1): s for s in self.stages
                 if re.search(r"\sAS\s+(\S+)", s[0])}
        self.assertIn("runtime-python", named)
        self.assertIn('$3 == "python"', "\n".join(named["runtime-python"]))
        self.assertTrue([p for p in runtime_packages(host_release(), {"python"}) if p.startswith("libpython3.")])
        self.assertEqual(self.stages[-1], self.runtime)

    def test_check_can_fail(self):
        """A runtime stage without librdkafka1 leaves librdkafka.so unprovided."""
        self.assertEqual(self.result.returncode, 0)
        wanted = runtime_packages(host_release(), {"runtime"}) - {"librdkafka1"}
        allowed = recursive_depends(wanted) | required_packages()
        owner = None
        r = subprocess.run(["ldd", os.path.join(self.staging, "usr/bin/acme-hookd")],
                           capture_output=True, text=True)
        for line in r.stdout.splitlines():
            if "librdkafka" in line:
                owner = dpkg_owner(re.search(r"=>\s+(/\S+)", line).group(1))
        self.assertIsNotNone(owner)
        self.assertNotIn(owner.split(":")[0], allowed)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", required=True)
    ARGS, rest = ap.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
