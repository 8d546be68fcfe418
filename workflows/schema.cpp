#include "workflows/schema.hpp"
