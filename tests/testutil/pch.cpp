// Compiles tests/testutil/pch.h once; every test program reuses the result.
