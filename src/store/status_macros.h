// Status plumbing for the engines' SQL code (SQLite and MySQL alike).
#pragma once

#include "core/status.h"

#define MPIM_SQL_CONCAT_INNER(a, b) a##b
#define MPIM_SQL_CONCAT(a, b) MPIM_SQL_CONCAT_INNER(a, b)
#define MPIM_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::mpim::core::Status mpim_status_ = (expr);  \
    if (!mpim_status_.ok()) return mpim_status_; \
  } while (0)
#define MPIM_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return std::move(tmp).status();   \
  lhs = std::move(*tmp)
#define MPIM_ASSIGN_OR_RETURN(lhs, expr) \
  MPIM_ASSIGN_OR_RETURN_IMPL(MPIM_SQL_CONCAT(mpim_statusor_, __LINE__), lhs, expr)
