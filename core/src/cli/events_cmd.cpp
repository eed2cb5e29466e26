// `berth events`: prints the event log, following it by default as Podman does.
#include <iostream>

#include "berth/engine/engine.hpp"
#include "berth/events/events.hpp"
#include "berth/format/output.hpp"
#include "berth/format/template.hpp"
#include "command.hpp"

namespace berth::cli {
namespace {

using nlohmann::json;

// What a --format template sees: Podman's fields (Time as Go prints a time.Time) plus Docker's
// names (Action, Actor.ID, Actor.Attributes, time, timeNano) for `alias docker=berth`.
json template_data(const events::Event& e) {
  json j = events::to_json(e);
  j["Time"] = events::format_go_time(e.time_nano);
  j["Action"] = e.status;
  json attrs = e.attributes;
  if (!e.name.empty() && !attrs.contains("name")) {
    attrs["name"] = e.name;
  }
  if (!e.image.empty() && !attrs.contains("image")) {
    attrs["image"] = e.image;
  }
  j["Actor"] = {{"ID", e.id.empty() ? e.name : e.id}, {"Attributes", attrs}};
  j["time"] = e.time_nano / 1000000000;
  j["timeNano"] = e.time_nano;
  if (!j["Attributes"].is_object()) {
    j["Attributes"] = json::object();
  }
  return j;
}

Result<int> run_events(Context& ctx) {
  BERTH_TRY(auto* engine, ctx.engine());
  auto log = events::EventLog::from_config(engine->config());
  if (!log.enabled()) {
    return fail(Errc::NotSupported,
                "events are disabled (events_logger = \"none\" in containers.conf)");
  }
  events::ReadOptions o;
  BERTH_TRY(o.filters, events::Filters::parse(ctx.strs("filter")));
  int64_t now = events::now_nano();
  if (ctx.has("since")) {
    BERTH_TRY(o.since, events::parse_time(ctx.str("since"), true, now));
  }
  if (ctx.has("until")) {
    BERTH_TRY(o.until, events::parse_time(ctx.str("until"), false, now));
  }
  o.follow = ctx.get<bool>("stream", true);
  bool truncate = !ctx.get<bool>("no-trunc", true);
  std::string fmt = ctx.str("format");
  bool json_lines = format::is_json_format(fmt);
  std::optional<format::Template> tmpl;
  if (!fmt.empty() && !json_lines) {
    BERTH_TRY(auto t, format::Template::parse(format::normalize_format(fmt)));
    tmpl = std::move(t);
  }
  std::optional<Error> failure;
  BERTH_TRYV(log.read(o, [&](const events::Event& e) {
    if (json_lines) {
      ctx.out << events::to_json(e).dump() << "\n";
    } else if (tmpl) {
      auto text = tmpl->execute(template_data(e));
      if (!text) {
        failure = text.error();
        return false;
      }
      ctx.out << *text;
    } else {
      ctx.out << events::to_human(e, truncate) << "\n";
    }
    if (o.follow) {
      ctx.out.flush();
    }
    return true;
  }));
  if (failure) {
    return fail(*failure);
  }
  return 0;
}

Command events_command() {
  Command c;
  c.name = "events";
  c.summary = "Show berth events";
  c.usage = "[options]";
  c.max_args = 0;
  c.options = [](po::options_description& d) {
    d.add_options()("filter,f", po::value<std::vector<std::string>>()->composing(),
                    "filter output (type=, event=, container=, image=, volume=, network=, pod=, "
                    "label=)")("format", po::value<std::string>(),
                               "format the output using a Go template or json")(
        "since", po::value<std::string>(),
        "show all events created since timestamp (RFC3339, UNIX time or a duration like 10m)")(
        "until", po::value<std::string>(), "show all events created until timestamp")(
        "stream", po::value<bool>()->default_value(true)->implicit_value(true),
        "stream events and do not exit when returning the last known event")(
        "no-trunc", po::value<bool>()->default_value(true)->implicit_value(true),
        "do not truncate the output");
  };
  c.run = run_events;
  return c;
}

const Registrar reg([] {
  register_command("", events_command());
  register_command("system", events_command());
});

}  // namespace
}  // namespace berth::cli
