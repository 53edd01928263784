// Precompiled header of graftlab_core (and of every target that reuses it).
// Torch comes first: Qt's `slots` macro breaks ATen/core/ivalue_inl.h when Qt is included earlier.
#pragma once
#include <torch/torch.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>
