#include "workflows/loader.hpp"
