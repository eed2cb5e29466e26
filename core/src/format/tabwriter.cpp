// Go's text/tabwriter column algorithm (elastic tabstops over column blocks).
#include "berth/format/tabwriter.hpp"

#include <vector>

#include "go_print.hpp"

namespace berth::format {

namespace {

struct Cell {
  std::string_view text;
  int width = 0;  // in code points
  bool htab = false;
};

using Line = std::vector<Cell>;

class Formatter {
 public:
  Formatter(const TabWriter::Options& o, const std::vector<Line>& lines, std::string& out)
      : o_(o), lines_(lines), out_(out) {}

  void run() { format(0, static_cast<int>(lines_.size())); }

 private:
  void pad(int textw, int cellw) {
    if (o_.padchar == '\t') {
      // Tabs as padding: the cell width is a multiple of tabwidth.
      if (o_.tabwidth <= 0) {
        return;
      }
      int rounded = (cellw + o_.tabwidth - 1) / o_.tabwidth * o_.tabwidth;
      int n = (rounded - textw + o_.tabwidth - 1) / o_.tabwidth;
      out_.append(static_cast<size_t>(n), '\t');
      return;
    }
    if (cellw > textw) {
      out_.append(static_cast<size_t>(cellw - textw), o_.padchar);
    }
  }

  void write_lines(int line0, int line1) {
    for (int i = line0; i < line1; ++i) {
      const Line& line = lines_[i];
      for (size_t j = 0; j < line.size(); ++j) {
        const Cell& c = line[j];
        if (j > 0 && o_.debug) {
          out_ += '|';
        }
        if (c.text.empty()) {
          if (j < widths_.size()) {
            pad(c.width, widths_[j]);
          }
        } else if (o_.align_right) {
          if (j < widths_.size()) {
            pad(c.width, widths_[j]);
          }
          out_.append(c.text);
        } else {
          out_.append(c.text);
          if (j < widths_.size()) {
            pad(c.width, widths_[j]);
          }
        }
      }
      if (i + 1 < static_cast<int>(lines_.size())) {
        out_ += '\n';
      }
    }
  }

  // Go's Writer.format: a column block is a run of consecutive lines with a cell in `column`.
  int format(int line0, int line1) {
    size_t column = widths_.size();
    for (int self = line0; self < line1; ++self) {
      if (column + 1 >= lines_[self].size()) {
        continue;
      }
      write_lines(line0, self);
      line0 = self;
      int width = o_.minwidth;
      for (; self < line1; ++self) {
        const Line& line = lines_[self];
        if (column + 1 >= line.size()) {
          break;
        }
        int w = line[column].width + o_.padding;
        if (w > width) {
          width = w;
        }
      }
      widths_.push_back(width);
      format(line0, self);
      widths_.pop_back();
      line0 = self;
    }
    write_lines(line0, line1);
    return line1;
  }

  const TabWriter::Options& o_;
  const std::vector<Line>& lines_;
  std::string& out_;
  std::vector<int> widths_;
};

}  // namespace

std::string TabWriter::flush() {
  std::vector<Line> lines;
  Line cur;
  size_t start = 0;
  auto end_cell = [&](size_t at, bool htab) {
    Cell c;
    c.text = std::string_view(buf_).substr(start, at - start);
    c.width = static_cast<int>(detail::rune_count(c.text));
    c.htab = htab;
    cur.push_back(c);
    start = at + 1;
  };
  for (size_t i = 0; i < buf_.size(); ++i) {
    char ch = buf_[i];
    if (ch == '\t' || ch == '\v') {
      end_cell(i, ch == '\t');
    } else if (ch == '\n' || ch == '\f') {
      end_cell(i, false);
      lines.push_back(std::move(cur));
      cur.clear();
    }
  }
  end_cell(buf_.size(), false);
  lines.push_back(std::move(cur));
  std::string out;
  out.reserve(buf_.size() * 2);
  Formatter(opts_, lines, out).run();
  buf_.clear();
  return out;
}

}  // namespace berth::format
