// netpol-cni is copied onto every node and run there by the container runtime,
// whatever the node's libc: it must be a fully static executable (read from its
// ELF file: no program interpreter, no shared libraries needed) that uses none
// of glibc's NSS (which would dlopen the host's libraries at run time), and it
// must run with an empty environment. Registered only where the plugin is
// built static (not under sanitizers, tests/CMakeLists.txt), in the e2e tier:
// it checks the binary the other e2e tests run.
#include <elf.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace netpol::cni {
namespace {

// The whole file, and typed reads of it that fail (nullopt) past its end.
class ElfFile {
 public:
  ElfFile() = default;
  explicit ElfFile(const char* path) {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) return;
    bytes_.resize(static_cast<size_t>(in.tellg()));
    in.seekg(0);
    in.read(bytes_.data(), static_cast<std::streamsize>(bytes_.size()));
    if (!in) bytes_.clear();
  }

  template <typename T>
  std::optional<T> At(uint64_t offset) const {
    if (offset > bytes_.size() || bytes_.size() - offset < sizeof(T)) return std::nullopt;
    T out;
    std::memcpy(&out, bytes_.data() + offset, sizeof(T));
    return out;
  }

  std::string_view StringAt(uint64_t offset) const {
    if (offset >= bytes_.size()) return {};
    return {bytes_.data() + offset, strnlen(bytes_.data() + offset, bytes_.size() - offset)};
  }

  bool empty() const { return bytes_.empty(); }

 private:
  std::vector<char> bytes_;
};

class CniStaticTest : public ::testing::Test {
 protected:
  void SetUp() override {
    elf_ = ElfFile(NETPOL_CNI_BIN);
    ASSERT_FALSE(elf_.empty()) << NETPOL_CNI_BIN;
    const auto header = elf_.At<Elf64_Ehdr>(0);
    ASSERT_TRUE(header.has_value());
    ASSERT_EQ(std::memcmp(header->e_ident, ELFMAG, SELFMAG), 0) << "not an ELF file";
    ASSERT_EQ(header->e_ident[EI_CLASS], ELFCLASS64);
    header_ = *header;
  }

  std::vector<Elf64_Phdr> ProgramHeaders() const {
    std::vector<Elf64_Phdr> out;
    for (uint16_t i = 0; i < header_.e_phnum; ++i) {
      const auto ph = elf_.At<Elf64_Phdr>(header_.e_phoff + uint64_t{i} * header_.e_phentsize);
      EXPECT_TRUE(ph.has_value()) << "program header " << i << " past the end";
      if (ph) out.push_back(*ph);
    }
    return out;
  }

  std::vector<Elf64_Shdr> SectionHeaders() const {
    std::vector<Elf64_Shdr> out;
    for (uint16_t i = 0; i < header_.e_shnum; ++i) {
      const auto sh = elf_.At<Elf64_Shdr>(header_.e_shoff + uint64_t{i} * header_.e_shentsize);
      EXPECT_TRUE(sh.has_value()) << "section header " << i << " past the end";
      if (sh) out.push_back(*sh);
    }
    return out;
  }

  ElfFile elf_;
  Elf64_Ehdr header_{};
};

TEST_F(CniStaticTest, HasNoInterpreterAndNeedsNoLibrary) {
  EXPECT_TRUE(header_.e_type == ET_EXEC || header_.e_type == ET_DYN);
  const std::vector<Elf64_Phdr> segments = ProgramHeaders();
  ASSERT_FALSE(segments.empty());
  for (const Elf64_Phdr& ph : segments) {
    EXPECT_NE(ph.p_type, PT_INTERP) << "netpol-cni asks for a dynamic loader: it is not static";
    if (ph.p_type != PT_DYNAMIC) continue;
    // A static PIE has a dynamic section of its own relocations, but never DT_NEEDED.
    for (uint64_t at = ph.p_offset; at + sizeof(Elf64_Dyn) <= ph.p_offset + ph.p_filesz;
         at += sizeof(Elf64_Dyn)) {
      const auto entry = elf_.At<Elf64_Dyn>(at);
      ASSERT_TRUE(entry.has_value());
      if (entry->d_tag == DT_NULL) break;
      EXPECT_NE(entry->d_tag, DT_NEEDED) << "netpol-cni needs a shared library";
    }
  }
}

TEST_F(CniStaticTest, UsesNoNameServiceSwitch) {
  // Linked statically, glibc's NSS functions would dlopen the host's NSS modules,
  // which must match the glibc linked in: the plugin may call none of them.
  static constexpr std::array<std::string_view, 14> kNss = {
      "getaddrinfo",    "getnameinfo", "gethostbyname", "gethostbyname2", "gethostbyaddr",
      "getpwnam",       "getpwuid",    "getgrnam",      "getgrgid",       "getservbyname",
      "getprotobyname", "getspnam",    "initgroups",    "getgrouplist"};
  const std::vector<Elf64_Shdr> sections = SectionHeaders();
  bool have_symbols = false;
  size_t symbols = 0;
  for (const Elf64_Shdr& sh : sections) {
    if (sh.sh_type != SHT_SYMTAB || sh.sh_entsize != sizeof(Elf64_Sym) || sh.sh_link >= sections.size()) {
      continue;
    }
    have_symbols = true;
    const Elf64_Shdr& names = sections[sh.sh_link];
    for (uint64_t at = sh.sh_offset; at + sizeof(Elf64_Sym) <= sh.sh_offset + sh.sh_size;
         at += sizeof(Elf64_Sym)) {
      const auto sym = elf_.At<Elf64_Sym>(at);
      ASSERT_TRUE(sym.has_value());
      if (sym->st_shndx == SHN_UNDEF) continue;
      const std::string_view name = elf_.StringAt(names.sh_offset + sym->st_name);
      ++symbols;
      for (const std::string_view nss : kNss) EXPECT_NE(name, nss) << "netpol-cni links " << nss;
      EXPECT_NE(name.substr(0, 6), "__nss_") << "netpol-cni links NSS: " << name;
      EXPECT_NE(name.substr(0, 5), "_nss_") << "netpol-cni links NSS: " << name;
    }
  }
  // The build tree's plugin keeps its symbol table (the image strips its copy).
  ASSERT_TRUE(have_symbols) << "netpol-cni has no symbol table to check";
  EXPECT_GT(symbols, 1000u);  // the symbols were read at all
}

TEST_F(CniStaticTest, RunsWithAnEmptyEnvironment) {
  const std::string command = std::string("env -i CNI_COMMAND=VERSION ") + NETPOL_CNI_BIN + " </dev/null";
  std::string out;
  {
    const std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
    ASSERT_NE(pipe, nullptr);
    std::array<char, 4096> buffer{};
    for (size_t n; (n = fread(buffer.data(), 1, buffer.size(), pipe.get())) > 0;)
      out.append(buffer.data(), n);
  }
  EXPECT_NE(out.find("\"supportedVersions\""), std::string::npos) << out;
}

}  // namespace
}  // namespace netpol::cni
