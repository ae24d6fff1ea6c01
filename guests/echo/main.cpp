// Reads its console (the console domain routes typed input to the domain in
// focus) and says each line back; "quit" ends it. For the console input test.

#include <rt/console.hpp>
#include <rt/events.hpp>
#include <rt/rt.hpp>

void rt::main() {
    rt::events_init();
    rt::printf("ready for input\n");
    char line[128];
    size_t n = 0;
    for (;;) {
        char buf[64];
        size_t got = rt::console_read(buf, sizeof buf);
        if (got == 0) {
            uint32_t port = rt::console_port();
            if (!port) return;
            rt::wait_port(port);
            continue;
        }
        for (size_t i = 0; i < got; ++i) {
            char c = buf[i];
            if (c == '\r' || c == '\n') {
                line[n] = '\0';
                if (n) rt::printf("got \"%s\"\n", line);
                bool quit = n == 4 && __builtin_memcmp(line, "quit", 4) == 0;
                n = 0;
                if (quit) return;
            } else if (n + 1 < sizeof line) {
                line[n++] = c;
            }
        }
    }
}
