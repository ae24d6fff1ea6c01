#pragma once
// `moat graph`: a manifest's policy as a picture, who may talk to whom.
//
// to_dot() turns a System into Graphviz DOT text: each domain a box styled by
// its role, each PCI function a node attached to the driver domain that holds
// it, each connection an edge from front-end to back-end labelled with its
// kind, and each capability the manifest writes out (grants, events,
// controls) an edge from the holder to its peer; what concerns the domain
// alone (ioports, irqs, mmio, debug_console, memory, scheduling, restart,
// cmdline) is written in its box. The output is a function of the manifest
// only and sorted, so the same manifest always gives the same DOT.
// render() has Graphviz's `dot` draw it (SVG, PNG, PDF).

#include "manifest.hpp"

#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace moat::graph {

// `text` as the inside of a DOT quoted string, safe whatever it holds: a
// quote or a backslash is escaped (so that Graphviz never reads an escape
// sequence such as \N or \l the manifest did not mean), and every byte that is
// not printable ASCII (newlines, control bytes, UTF-8) becomes the four
// visible characters \xHH. Nothing of `text` can end the string or the graph.
[[nodiscard]] std::string escape(std::string_view text);

// escape(text) between double quotes: a DOT ID.
[[nodiscard]] std::string quote(std::string_view text);

// The DOT of `system` (expected checked: names unique, peers existing), with
// `title` (e.g. the manifest's file name) as the graph's caption.
[[nodiscard]] std::string to_dot(const System& system, std::string_view title);

// Where `dot` is: $MOAT_DOT if set (a path or a name), else "dot" found in
// $PATH. nullopt if it is not there or not executable.
[[nodiscard]] std::optional<std::filesystem::path> find_dot();

// Has `dot` (find_dot()) draw `dot_text` into `out` in `format` ("svg",
// "png", "pdf"), giving it at most `timeout_s` seconds. False with the reason
// in *why (and no file `out`) if dot is missing, fails or takes too long.
[[nodiscard]] bool render(const std::string& dot_text, std::string_view format, const std::filesystem::path& out,
                          double timeout_s, std::string* why);

// Loads and checks a manifest as `moat check` does (printing its problems);
// true if it has none. main.cpp passes its own, so that `moat graph` refuses
// exactly what `moat check` refuses.
using LoadAndCheck = std::function<bool(const std::string& file, moat::manifest::Loaded* m)>;

// Which manifest a running system was started from: the system `wanted`
// (empty: the only one running), as `moat list` picks it. False with *why
// for a person. main.cpp passes the run directories' (rundir.hpp), so that
// this file needs no more than a manifest.
using RunningManifest = std::function<bool(const std::string& wanted, std::string* file, std::string* why)>;

// `moat graph FILE -o OUT`, or `moat graph [--system NAME] -o OUT` with
// `running` (argv without "moat graph"); the exit status.
[[nodiscard]] int command(int argc, char** argv, const LoadAndCheck& load_and_check,
                          const RunningManifest& running = {});

void print_help(FILE* out);

}  // namespace moat::graph
