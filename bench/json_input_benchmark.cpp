// netpol's JSON input against Python's json.load, measured in one run: a
// `kubectl get pods -A -o json` List of 10,000 pods (about 53 MB; written by
// this program into a temporary directory as kubectl writes it: 4-space
// indents, every item with its kind and apiVersion) read by
//   - netpol: api::LoadManifests, what `netpol ... -f pods.json` does (read the
//     file, decode every pod, validate it), the JSON read in place (simdjson);
//   - netpol, YAML reader: the same with DecodeOptions::json_reader off (the
//     JSON read by libyaml, as before);
//   - Python: json.load(open(file)), the baseline.
// Each load runs in a child process of its own, the three interleaved, for
// several rounds; the child times its load (not its start), wait4 gives its
// CPU time (all of it: start, read, load, exit) and peak RSS. Prints the
// medians and the ratios to Python. On a shared machine the CPU times are the
// steadier measure: the wall times count waiting for a core too.
//
//   build/release/bench/json_input_benchmark [pods=10000] [rounds=5] [--baseline OTHER]
//   build/release/bench/json_input_benchmark --write pods.json [pods]   # the list alone
//
// --baseline OTHER: another build of this program (an older commit's) loads
// the same file too, as a fourth reader interleaved with the others, so a
// change is measured against the code before it in one run.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/load.h"
#include "realistic_pod.h"

namespace netpol {
namespace {

struct Sample {
  double ms = 0;        // the load, as the child timed it
  double cpu_ms = 0;    // the child's CPU time, user and system
  double peak_mib = 0;  // the child's peak RSS
};

double Ms(const timeval& t) {
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_usec) / 1e3;
}

// Runs `argv` with its stdout read back; the first line is its time in ms.
Sample RunChild(const std::vector<std::string>& argv) {
  int out[2];
  if (pipe(out) != 0) std::abort();
  const pid_t pid = fork();
  if (pid < 0) std::abort();
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    close(out[1]);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  std::string text;
  char buffer[256];
  for (ssize_t n; (n = read(out[0], buffer, sizeof(buffer))) > 0;)
    text.append(buffer, static_cast<size_t>(n));
  close(out[0]);
  int status = 0;
  rusage usage{};
  if (wait4(pid, &status, 0, &usage) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::cerr << argv[0] << " failed (status " << status << "): " << text << "\n";
    std::exit(1);
  }
  return {std::stod(text), Ms(usage.ru_utime) + Ms(usage.ru_stime),
          static_cast<double>(usage.ru_maxrss) / 1024.0};  // ru_maxrss is in KiB
}

// The child: loads `file`, prints the milliseconds it took.
int Load(const std::string& file, bool json_reader) {
  const auto start = std::chrono::steady_clock::now();
  const api::LoadResult loaded = api::LoadManifests({file}, {.json_reader = json_reader}, std::cin);
  const auto end = std::chrono::steady_clock::now();
  if (!loaded.ok() || loaded.objects.empty()) {
    std::cerr << "the list did not load: " << loaded.diagnostics.size() << " diagnostics\n";
    return 1;
  }
  std::printf("%.3f\n", std::chrono::duration<double, std::milli>(end - start).count());
  return 0;
}

void WriteList(const std::string& path, int pods) {
  using Json = nlohmann::ordered_json;  // kubectl's field order: apiVersion, kind, metadata, ...
  Json list = {{"apiVersion", "v1"},
               {"items", Json::array()},
               {"kind", "List"},
               {"metadata", {{"resourceVersion", ""}}}};
  Json& items = list["items"];
  for (int i = 0; i < pods; ++i) {
    Json pod = {{"apiVersion", "v1"}, {"kind", "Pod"}};
    Json fields = bench::RealisticPod(i);
    for (auto& [key, value] : fields.items()) pod[key] = std::move(value);
    items.push_back(std::move(pod));
  }
  std::ofstream(path) << list.dump(4) << "\n";
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace
}  // namespace netpol

int main(int argc, char** argv) {
  using namespace netpol;
  if (argc == 4 && std::string(argv[1]) == "--load") return Load(argv[2], std::string(argv[3]) == "json");
  if (argc >= 3 && std::string(argv[1]) == "--write") {
    WriteList(argv[2], argc > 3 ? std::atoi(argv[3]) : 10000);
    return 0;
  }
  const int pods = argc > 1 ? std::atoi(argv[1]) : 10000;
  const int rounds = std::max(argc > 2 ? std::atoi(argv[2]) : 5, 1);
  const std::string baseline = argc > 4 && std::string(argv[3]) == "--baseline" ? argv[4] : "";
  char dir_template[] = "/tmp/netpol-json-input-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) return 1;
  const std::filesystem::path dir = dir_template;
  const std::string file = (dir / "pods.json").string();
  WriteList(file, pods);
  const double file_mib = static_cast<double>(std::filesystem::file_size(file)) / (1 << 20);
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  struct Contender {
    const char* name;
    std::vector<std::string> argv;
    std::vector<double> ms, cpu, peak;
  };
  std::vector<Contender> contenders = {
      {"python3 json.load (baseline)",
       {"python3", "-c",
        "import json, sys, time\nt = time.perf_counter()\nlist = json.load(open(sys.argv[1]))\n"
        "print((time.perf_counter() - t) * 1000)",
        file},
       {},
       {},
       {}},
      {"netpol LoadManifests, JSON reader", {self, "--load", file, "json"}, {}, {}, {}},
      {"netpol LoadManifests, YAML reader (before)", {self, "--load", file, "yaml"}, {}, {}, {}},
  };
  if (!baseline.empty()) {
    contenders.push_back(
        {"netpol LoadManifests, JSON reader (--baseline)", {baseline, "--load", file, "json"}, {}, {}, {}});
  }
  for (int r = 0; r < rounds; ++r) {
    for (Contender& c : contenders) {
      const Sample s = RunChild(c.argv);
      c.ms.push_back(s.ms);
      c.cpu.push_back(s.cpu_ms);
      c.peak.push_back(s.peak_mib);
    }
  }
  std::filesystem::remove_all(dir);
  std::printf("%d pods, %.1f MiB of JSON; medians of %d interleaved rounds\n", pods, file_mib, rounds);
  std::printf("%-48s %8s %9s %8s %9s %9s %8s\n", "reader", "load ms", "vs python", "CPU ms", "vs python",
              "peak MiB", "/ file");
  const double python_ms = Median(contenders[0].ms);
  const double python_cpu = Median(contenders[0].cpu);
  for (const Contender& c : contenders) {
    const double ms = Median(c.ms);
    const double cpu = Median(c.cpu);
    const double peak = Median(c.peak);
    std::printf("%-48s %8.1f %8.2fx %8.1f %8.2fx %9.1f %7.2fx\n", c.name, ms, python_ms / ms, cpu,
                python_cpu / cpu, peak, peak / file_mib);
  }
  std::printf("(vs python: python's time / this time, above 1 is faster; CPU: the whole child process)\n");
  return 0;
}
