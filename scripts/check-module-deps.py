#!/usr/bin/env python3
"""Checks src/ against the module graph that docs/ARCHITECTURE.md draws.

The diagram under "## Modules" is the one place the allowed edges are kept,
one module a line ("lab ──> policy, kube"; "kube ──> base, api (private)";
"dataplane ──> policy [compiled.h direction.h]": of policy, dataplane's own
files include only those headers). This script fails, naming file:line and
the edge, when

  * a file of src/<module>/ includes "<other>/..." and <module> may not use
    <other>: allowed are its own edges and, through each of them, what that
    module uses publicly (CMake's PUBLIC: a module that links dataplane gets
    policy, api and base with it);
  * a module includes another module's internal/ header, or a header its
    edge to that module does not list (when the edge lists headers);
  * a public header (src/<module>/*.h, not internal/) includes a module its
    module uses privately (the header would hand it on);
  * src/<module>/CMakeLists.txt's netpol_library DEPS / PRIVATE_DEPS are not
    exactly the diagram's public / private edges, or an executable there links
    a module its module may not use;
  * src/CMakeLists.txt adds a module before one it uses, or the diagram has a
    cycle, a module without a directory or a directory without a line.

  scripts/check-module-deps.py            # the repository this script is in
  scripts/check-module-deps.py --root DIR # another tree (tests/lint plant errors in a copy)
"""

import argparse
import pathlib
import re
import sys

ARROW = "──>"
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')


def read_graph(architecture, problems, narrow=None):
    """{module: {dep: private?}} from the first code block under "## Modules";
    `narrow` gets {module: {dep: {header, ...}}} for edges that list headers."""
    narrow = {} if narrow is None else narrow
    text = architecture.read_text(encoding="utf-8")
    start = text.find("\n## Modules")
    block = re.compile(r"```\n(.*?)```", re.S).search(text, start) if start >= 0 else None
    if block is None:
        problems.append(f"{architecture}: no ``` module diagram under '## Modules'")
        return {}
    first_line = text[: block.start(1)].count("\n") + 1
    graph = {}
    for number, line in enumerate(block.group(1).splitlines(), first_line):
        if not line.strip():
            continue
        match = re.fullmatch(r"\s*([a-z_]+)\s+" + ARROW + r"\s+(.+?)\s*", line)
        if match is None:
            problems.append(f"{architecture}:{number}: want 'module {ARROW} dep, dep (private)', got: {line}")
            continue
        deps = {}
        for item in match.group(2).split(","):
            dep = re.fullmatch(r"\s*([a-z_]+)(\s+\(private\))?(\s+\[([a-z_./ ]+)\])?\s*", item)
            if dep is None:
                problems.append(f"{architecture}:{number}: cannot read the edge '{item.strip()}'")
                continue
            deps[dep.group(1)] = dep.group(2) is not None
            if dep.group(4) is not None:
                narrow.setdefault(match.group(1), {})[dep.group(1)] = set(dep.group(4).split())
        if match.group(1) in graph:
            problems.append(f"{architecture}:{number}: {match.group(1)} has a second line")
        graph[match.group(1)] = deps
    for deps in list(graph.values()):
        for dep in deps:
            graph.setdefault(dep, {})  # leaves (base) need no line of their own
    return graph


def public_closure(graph, module):
    """What using `module` brings with it: itself and its public edges, transitively."""
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo.extend(dep for dep, private in graph.get(current, {}).items() if not private)
    return seen


def allowed(graph, module):
    result = set()
    for dep in graph[module]:
        result |= public_closure(graph, dep)
    return result


def find_cycle(graph):
    state = {}

    def visit(module, path):
        state[module] = "open"
        for dep in graph[module]:
            if state.get(dep) == "open":
                return path + [module, dep]
            if dep not in state:
                found = visit(dep, path + [module])
                if found:
                    return found
        state[module] = "done"
        return None

    for module in graph:
        if module not in state:
            found = visit(module, [])
            if found:
                return found
    return None


def check_includes(root, graph, problems, narrow=None):
    narrow = {} if narrow is None else narrow
    src = root / "src"
    for path in sorted(src.rglob("*")):
        if path.suffix not in (".h", ".cpp") or not path.is_file():
            continue
        relative = path.relative_to(root)
        module = path.relative_to(src).parts[0]
        if module not in graph:
            continue  # reported by check_modules
        may_use = allowed(graph, module)
        public_header = path.suffix == ".h" and path.parent == src / module
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            match = INCLUDE.match(line)
            if match is None:
                continue
            parts = match.group(1).split("/")
            target = parts[0]
            if target == module or target not in graph:
                continue
            if "internal" in parts[1:-1]:
                problems.append(f"{relative}:{number}: {module} -> {target}: includes {match.group(1)}, "
                                f"an internal header of {target}")
            elif target in narrow.get(module, {}) and "/".join(parts[1:]) not in narrow[module][target]:
                listed = ", ".join(f"{target}/{h}" for h in sorted(narrow[module][target]))
                problems.append(f"{relative}:{number}: {module} -> {target}: includes {match.group(1)}; "
                                f"the module diagram lets {module} include only {listed}")
            elif target not in may_use:
                problems.append(f"{relative}:{number}: {module} -> {target} is not an edge of the module "
                                f"diagram ({module} may use: {', '.join(sorted(may_use)) or 'nothing'})")
            elif public_header and graph[module].get(target) and not any(
                    target in public_closure(graph, dep) for dep, private in graph[module].items() if not private):
                problems.append(f"{relative}:{number}: {module} -> {target} is private, and this public "
                                f"header would hand {target} on to {module}'s users")


def cmake_calls(text, function):
    """The argument lists of every `function(...)` call, comments removed."""
    text = re.sub(r"#[^\n]*", "", text)
    return [call.split() for call in re.findall(function + r"\(([^)]*)\)", text)]


def check_cmake(root, graph, problems):
    for module in sorted(graph):
        lists = root / "src" / module / "CMakeLists.txt"
        if not lists.is_file():
            continue  # reported by check_modules
        text = lists.read_text(encoding="utf-8")
        relative = lists.relative_to(root)
        calls = cmake_calls(text, "netpol_library")
        if len(calls) != 1:
            problems.append(f"{relative}: want one netpol_library(...), found {len(calls)}")
            continue
        linked, section = {}, None
        for token in calls[0]:
            if token in ("NAME", "SRCS", "DEPS", "PRIVATE_DEPS"):
                section = token
            elif section in ("DEPS", "PRIVATE_DEPS") and token.startswith("netpol::"):
                linked[token[len("netpol::"):]] = section == "PRIVATE_DEPS"
        if linked != graph[module]:
            def show(deps):
                return ", ".join(d + (" (private)" if p else "") for d, p in sorted(deps.items())) or "nothing"
            problems.append(f"{relative}: {module} links {show(linked)}; the module diagram says "
                            f"{show(graph[module])}")
        may_use = allowed(graph, module) | {module}
        for call in cmake_calls(text, "target_link_libraries"):
            for token in call[1:]:
                target = token[len("netpol::"):] if token.startswith("netpol::") else None
                if target is not None and target not in may_use:
                    problems.append(f"{relative}: {call[0]} links netpol::{target}: {module} -> {target} "
                                    "is not an edge of the module diagram")


def check_modules(root, graph, problems):
    dirs = {p.parent.name for p in (root / "src").glob("*/CMakeLists.txt")}
    for module in sorted(set(graph) - dirs):
        problems.append(f"docs/ARCHITECTURE.md: module {module} has no src/{module}/CMakeLists.txt")
    for module in sorted(dirs - set(graph)):
        problems.append(f"src/{module}: not in docs/ARCHITECTURE.md's module diagram")
    cycle = find_cycle(graph)
    if cycle:
        problems.append("docs/ARCHITECTURE.md: the module diagram has a cycle: " + f" {ARROW} ".join(cycle))
    order = [call[0] for call in cmake_calls((root / "src" / "CMakeLists.txt").read_text(encoding="utf-8"),
                                             "add_subdirectory")]
    for module in order:
        for dep in graph.get(module, {}):
            if dep in order and order.index(dep) > order.index(module):
                problems.append(f"src/CMakeLists.txt: add_subdirectory({module}) comes before "
                                f"add_subdirectory({dep}), which it uses")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=pathlib.Path, default=pathlib.Path(__file__).resolve().parent.parent)
    root = parser.parse_args().root
    problems, narrow = [], {}
    graph = read_graph(root / "docs" / "ARCHITECTURE.md", problems, narrow)
    if graph:
        check_modules(root, graph, problems)
        check_cmake(root, graph, problems)
        check_includes(root, graph, problems, narrow)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"module edges: {len(problems)} problem(s); the allowed edges are docs/ARCHITECTURE.md's "
              "module diagram", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
