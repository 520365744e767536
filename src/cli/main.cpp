// netpol: wiring only; everything else is in the netpol_cli library.
#include <iostream>

#include "cli/app.h"

int main(int argc, char** argv) {
  return netpol::cli::Run(argc, argv, std::cin, std::cout, std::cerr);
}
