#include "workflows/expression.hpp"
