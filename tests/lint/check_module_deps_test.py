#!/usr/bin/env python3
"""scripts/check-module-deps.py fails on each kind of forbidden edge planted in
a copy of this repository's src/ and docs/ARCHITECTURE.md, naming the file,
the line and the edge, and passes the copy as it is.

  python3 tests/lint/check_module_deps_test.py   # ctest: lint.ModuleEdges (label fast)
"""

import pathlib
import shutil
import subprocess
import sys
import tempfile
import unittest

REPO = pathlib.Path(__file__).resolve().parents[2]
CHECKER = REPO / "scripts" / "check-module-deps.py"


class ModuleEdgesTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="netpol-module-edges-")
        self.root = pathlib.Path(self.tmp.name)
        (self.root / "docs").mkdir()
        shutil.copy(REPO / "docs" / "ARCHITECTURE.md", self.root / "docs")
        shutil.copytree(REPO / "src", self.root / "src",
                        ignore=lambda d, names: [n for n in names if (pathlib.Path(d) / n).is_file()
                                                 and not n.endswith((".h", ".cpp", "CMakeLists.txt"))])

    def tearDown(self):
        self.tmp.cleanup()

    def check(self):
        run = subprocess.run([sys.executable, str(CHECKER), "--root", str(self.root)],
                             capture_output=True, text=True, timeout=60)
        return run.returncode, run.stderr

    def plant_line(self, relative, line):
        """Puts `line` after the file's first #include; returns its line number."""
        path = self.root / relative
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        at = next(i for i, text in enumerate(lines) if text.startswith("#include")) + 1
        lines.insert(at, line + "\n")
        path.write_text("".join(lines), encoding="utf-8")
        return at + 1

    def replace(self, relative, old, new):
        path = self.root / relative
        text = path.read_text(encoding="utf-8")
        self.assertIn(old, text, f"the test's anchor is gone from {relative}")
        path.write_text(text.replace(old, new, 1), encoding="utf-8")

    def test_the_tree_as_it_is_passes(self):
        code, err = self.check()
        self.assertEqual(code, 0, err)
        self.assertEqual(err, "")

    def test_an_include_against_the_graph_fails_with_file_line_and_edge(self):
        line = self.plant_line("src/base/ip.cpp", '#include "agent/agent.h"')
        code, err = self.check()
        self.assertEqual(code, 1)
        self.assertIn(f"src/base/ip.cpp:{line}: base -> agent is not an edge", err)
        self.assertIn("1 problem(s)", err)

    def make_lab_use_kube_privately(self):
        """The real diagram has no private module edge: plant one (lab's headers never include kube)."""
        self.replace("docs/ARCHITECTURE.md", "lab       ──> policy, kube", "lab       ──> policy, kube (private)")
        self.replace("src/lab/CMakeLists.txt", "DEPS netpol::policy netpol::kube\n  PRIVATE_DEPS ",
                     "DEPS netpol::policy\n  PRIVATE_DEPS netpol::kube ")

    def test_an_include_of_a_module_a_dependency_keeps_private_fails(self):
        # cli uses lab; with lab using kube privately, cli's includes of kube have no edge.
        self.make_lab_use_kube_privately()
        code, err = self.check()
        self.assertEqual(code, 1)
        self.assertRegex(err, r"src/cli/app\.cpp:\d+: cli -> kube is not an edge")

    def test_a_header_an_edge_does_not_list_fails(self):
        # dataplane may include the compiled form of policy, not its engine.
        line = self.plant_line("src/dataplane/routes.cpp", '#include "policy/engine.h"')
        code, err = self.check()
        self.assertEqual(code, 1)
        self.assertIn(f"src/dataplane/routes.cpp:{line}: dataplane -> policy: includes policy/engine.h; "
                      "the module diagram lets dataplane include only policy/compiled.h, policy/direction.h", err)
        self.assertIn("1 problem(s)", err)
        # agent reaches policy through dataplane, with no list of its own: the engine is its to use.
        self.plant_line("src/agent/log.cpp", '#include "policy/engine.h"')
        self.assertIn("1 problem(s)", self.check()[1])

    def test_another_modules_internal_header_fails(self):
        line = self.plant_line("src/policy/engine.cpp", '#include "api/internal/yaml.h"')
        code, err = self.check()
        self.assertEqual(code, 1)
        self.assertIn(f"src/policy/engine.cpp:{line}: policy -> api: includes api/internal/yaml.h", err)

    def test_a_public_header_including_a_private_dependency_fails(self):
        self.make_lab_use_kube_privately()
        line = self.plant_line("src/lab/lab.h", '#include "kube/client.h"')
        code, err = self.check()
        self.assertEqual(code, 1)
        self.assertIn(f"src/lab/lab.h:{line}: lab -> kube is private", err)
        # lab's .cpp files include kube: that is what the private edge is for.
        self.assertNotRegex(err, r"src/lab/[a-z_/]+\.cpp:\d+: lab -> kube")

    def test_cmake_links_that_differ_from_the_diagram_fail(self):
        self.replace("src/agent/CMakeLists.txt", "DEPS netpol::dataplane netpol::cni netpol::kube",
                     "DEPS netpol::dataplane netpol::kube")
        code, err = self.check()
        self.assertEqual(code, 1)
        self.assertIn("src/agent/CMakeLists.txt: agent links dataplane, kube; the module diagram says "
                      "cni, dataplane, kube", err)

    def test_an_executable_linking_a_module_its_module_may_not_use_fails(self):
        self.replace("src/lab/CMakeLists.txt", "target_link_libraries(netpol-probe PRIVATE netpol::lab)",
                     "target_link_libraries(netpol-probe PRIVATE netpol::lab netpol::agent)")
        code, err = self.check()
        self.assertEqual(code, 1)
        self.assertIn("src/lab/CMakeLists.txt: netpol-probe links netpol::agent: lab -> agent", err)

    def test_a_cycle_in_the_diagram_fails(self):
        self.replace("docs/ARCHITECTURE.md", "api       ──> base", "api       ──> base\nbase      ──> cli")
        self.replace("src/base/CMakeLists.txt", "exec_args.cpp)", "exec_args.cpp DEPS netpol::cli)")
        code, err = self.check()
        self.assertEqual(code, 1)
        self.assertIn("the module diagram has a cycle", err)
        self.assertIn("add_subdirectory(base) comes before add_subdirectory(cli)", err)

    def test_an_unreadable_diagram_line_fails(self):
        self.replace("docs/ARCHITECTURE.md", "policy    ──> api", "policy ──> api ──> base")
        code, err = self.check()
        self.assertEqual(code, 1)
        self.assertRegex(err, r"docs/ARCHITECTURE\.md:\d+: cannot read the edge 'api ──> base'")


if __name__ == "__main__":
    unittest.main()
