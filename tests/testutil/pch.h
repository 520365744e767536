// The headers nearly every test file includes, precompiled once for all test programs
// (tests/CMakeLists.txt, netpol_test_pch). Parsing gtest, gmock and nlohmann/json took a
// third of a test file's compile time; only what rarely changes belongs here.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
