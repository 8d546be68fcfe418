#include "workflows/graph.hpp"
