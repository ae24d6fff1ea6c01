#pragma once
// Result<T, E>: a value or an error, never both. The error type is an enum
// (or any trivially copyable type); there are no exceptions anywhere in Moat.

#include <new>
#include <type_traits>
#include <utility>

namespace base {

template <typename E>
struct Err {
    E error;
};

template <typename E>
Err(E) -> Err<E>;

template <typename T, typename E>
class [[nodiscard]] Result {
public:
    Result(T value) : ok_(true) { new (&value_) T(std::move(value)); }
    template <typename E2>
    Result(Err<E2> e) : ok_(false), error_(E(e.error)) {}

    Result(const Result& o) : ok_(o.ok_) {
        if (ok_) new (&value_) T(o.value_); else error_ = o.error_;
    }
    Result& operator=(const Result&) = delete;
    ~Result() { if (ok_) value_.~T(); }

    bool ok() const { return ok_; }
    explicit operator bool() const { return ok_; }
    T& value() { return value_; }
    const T& value() const { return value_; }
    T& operator*() { return value_; }
    T* operator->() { return &value_; }
    E error() const { return error_; }

private:
    bool ok_;
    union {
        T value_;
        E error_;
    };
};

// Result without a value: success or an error.
template <typename E>
class [[nodiscard]] Status {
public:
    Status() : ok_(true), error_() {}
    template <typename E2>
    Status(Err<E2> e) : ok_(false), error_(E(e.error)) {}
    bool ok() const { return ok_; }
    explicit operator bool() const { return ok_; }
    E error() const { return error_; }

private:
    bool ok_;
    E error_;
};

}  // namespace base

// TRY(expr): evaluate a Result/Status; return its error from the calling
// function if it failed.
#define TRY(expr)                                              \
    do {                                                       \
        auto try_r_ = (expr);                                  \
        if (!try_r_.ok()) return ::base::Err{try_r_.error()};  \
    } while (0)
