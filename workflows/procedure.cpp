#include "workflows/procedure.hpp"
