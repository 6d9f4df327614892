#!/usr/bin/env python3
"""Extracts the C, CMake and Python examples from README.md and runs them
as written: the C program built with pkg-config and through the CMake
snippet against a staged install prefix, the Python one with the project's
virtualenv. (The Rust examples run as doc tests.) Exits non-zero on failure.

usage: scripts/readme_snippets.py STAGE_PREFIX [PYTHON]
"""
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def blocks(lang):
    text = open(os.path.join(ROOT, "README.md")).read()
    return re.findall(r"^```" + lang + r"\n(.*?)^```", text, re.S | re.M)


def run(cmd, **kw):
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, timeout=300, **kw)


def main():
    stage = os.path.abspath(sys.argv[1])
    python = sys.argv[2] if len(sys.argv) > 2 else None
    c, cmake, py = blocks("c"), blocks("cmake"), blocks("python")
    if not c or not cmake:
        sys.exit("README.md has no C or CMake example")
    env = dict(os.environ)
    env["PKG_CONFIG_PATH"] = os.path.join(stage, "lib", "pkgconfig")
    env["LD_LIBRARY_PATH"] = os.path.join(stage, "lib")
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "app.c"), "w") as f:
            f.write(c[0])
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "zgossip"], env=env,
                               check=True, capture_output=True, text=True).stdout.split()
        run(["cc", "-Wall", "-o", os.path.join(d, "app-pc"), os.path.join(d, "app.c")] + flags, env=env)
        run([os.path.join(d, "app-pc")], env=env)
        with open(os.path.join(d, "CMakeLists.txt"), "w") as f:
            f.write(cmake[0])
        run(["cmake", "-S", d, "-B", os.path.join(d, "build"), "-DCMAKE_PREFIX_PATH=" + stage],
            stdout=subprocess.DEVNULL)
        run(["cmake", "--build", os.path.join(d, "build")], stdout=subprocess.DEVNULL)
        run([os.path.join(d, "build", "app")])
        if python:
            for i, code in enumerate(py):
                path = os.path.join(d, f"snippet{i}.py")
                with open(path, "w") as f:
                    f.write(code)
                run([python, path])
        elif py:
            print("README Python examples not run: no Python given", flush=True)
    print(f"README snippets: {len(c)} C, {len(cmake)} CMake, {len(py) if python else 0} Python ran")


if __name__ == "__main__":
    main()
