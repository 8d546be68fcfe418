#include "engine/start_group.hpp"

#include <algorithm>
#include <exception>
#include <string>
#include <utility>
#include <vector>

namespace wf::engine {

StartGroup::StartGroup(Runtime& runtime, Post post, int committers, std::size_t largest)
    : runtime_(runtime),
      post_(std::move(post)),
      committers_(std::max(1, committers)),
      largest_(std::max<std::size_t>(1, largest)) {}

void StartGroup::Submit(Request request, Done done) {
  auto owned = std::make_unique<Request>(std::move(request));
  owned->once.caller = owned->caller ? &*owned->caller : nullptr;
  bool commit = false;
  {
    std::lock_guard lock(mutex_);
    queue_.push_back({std::move(owned), std::move(done)});
    if (running_ < committers_) {
      ++running_;
      commit = true;
    }
  }
  // A free committer: this thread is it, and the start waits for nothing but its transaction.
  if (commit) Commit();
}

std::size_t StartGroup::Waiting() {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void StartGroup::Commit() {
  std::vector<Queued> group;
  {
    std::lock_guard lock(mutex_);
    const std::size_t take = std::min(largest_, queue_.size());
    for (std::size_t i = 0; i < take; ++i) {
      group.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    if (group.empty()) {
      --running_;
      return;
    }
  }
  std::vector<Runtime::OnceRequest> requests;
  requests.reserve(group.size());
  for (Queued& queued : group) requests.push_back(std::move(queued.request->once));
  std::vector<Result<Runtime::StartedOnce>> outcomes;
  try {
    outcomes = runtime_.StartCasesOnce(requests);
  } catch (const std::exception& e) {
    outcomes.assign(group.size(), Status::Internal(std::string("internal error: ") + e.what()));
  }
  for (std::size_t i = 0; i < group.size(); ++i) group[i].done(std::move(outcomes[i]));
  bool again = false;
  {
    std::lock_guard lock(mutex_);
    if (queue_.empty()) {
      --running_;
    } else {
      again = true;
    }
  }
  if (again) post_([this] { Commit(); });
}

}  // namespace wf::engine
