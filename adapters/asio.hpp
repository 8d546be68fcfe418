#pragma once

// The one way Asio enters the project. Boost 1.74's coroutine headers use std::exchange
// without including <utility>; g++ 12 then fails, so <utility> comes first. It lives in adapters/
// because the adapter interface (adapter.hpp) is written in Asio's terms and dependencies point
// one way: the engine and the CLI include it from here.
#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace asio = boost::asio;
