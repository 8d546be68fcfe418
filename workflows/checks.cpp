#include "workflows/checks.hpp"
