#pragma once
// Command lines ("word word key=value ..."): whether one holds a word.

#include <cstddef>

namespace base {

// True if `word` stands in `cmdline` as a whole space-separated word.
inline bool has_word(const char* cmdline, const char* word) {
    size_t n = __builtin_strlen(word);
    for (const char* p = cmdline; *p; ++p)
        if ((p == cmdline || p[-1] == ' ') && __builtin_memcmp(p, word, n) == 0 && (p[n] == ' ' || p[n] == '\0'))
            return true;
    return false;
}

}  // namespace base
