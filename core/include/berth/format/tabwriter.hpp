#pragma once
// Go's text/tabwriter: cells end at '\t'; consecutive lines that have a cell in a column form a
// column block whose width is max(cell width + padding, minwidth); the last cell of a line is not
// part of any column. Widths count UTF-8 code points.
#include <string>
#include <string_view>

namespace berth::format {

class TabWriter {
 public:
  struct Options {
    int minwidth = 0;
    int tabwidth = 8;
    int padding = 1;
    char padchar = ' ';
    bool align_right = false;
    bool debug = false;  // '|' between columns, as tabwriter.Debug
  };
  // Podman's report.NewWriterDefault: minwidth 12, tabwidth 2, padding 2, padchar ' ', flags 0.
  static Options podman_defaults() { return Options{12, 2, 2, ' ', false, false}; }

  TabWriter() = default;
  explicit TabWriter(Options opts) : opts_(opts) {}

  void write(std::string_view text) { buf_.append(text); }
  // Formats everything written so far and clears the buffer.
  std::string flush();

  // One-shot helper.
  static std::string format(std::string_view text, Options opts) {
    TabWriter w(opts);
    w.write(text);
    return w.flush();
  }

 private:
  Options opts_;
  std::string buf_;
};

}  // namespace berth::format
