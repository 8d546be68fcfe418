#include "workflows/yaml_tree.hpp"
