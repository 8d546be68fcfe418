#include "workflows/duration.hpp"
