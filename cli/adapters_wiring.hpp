#pragma once

// Where the `wf` program wires concrete adapters into the registry (DESIGN.md: "cli/ wires the
// concrete adapters into the registry at start-up"). The engine sees only the interface.

#include "adapters/adapter.hpp"
#include "engine/config.hpp"
#include "workflows/status.hpp"

namespace wf::cli {

// Adds one adapter per department of `deployment` to `registry`, chosen by the department's
// `adapter:` kind. A department whose kind this program does not support yet is logged as a
// warning and gets a stand-in adapter that fails every call permanently with a message naming
// the department and its kind, so the steps calling it become incidents an operator sees
// (`wf incidents`) and can retry once the config is fixed. Returns a non-ok status only when a supported adapter refuses
// its settings (kInvalid at the department's file:line:col); `registry` may then hold the
// departments wired before it. Builds only: no adapter does I/O before its first Invoke, which
// runs on the executor of the coroutine that awaits it.
Status BuildRegistry(const engine::Deployment& deployment, adapters::Registry* registry);

}  // namespace wf::cli
