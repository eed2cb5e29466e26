// berth container clone: a new container made with the create options stored with another one
// (Podman 4's `podman container clone CONTAINER [NAME] [IMAGE]`).
#include <iostream>

#include "berth/container/container.hpp"
#include "berth/container/service.hpp"
#include "berth/engine/engine.hpp"
#include "command.hpp"

namespace berth::cli {
namespace {

namespace bc = berth::container;

// Podman's name for a clone: <name>-clone, then <name>-clone1, <name>-clone2, ...
Result<std::string> clone_name(bc::ContainerDb& db, const std::string& original) {
  for (int i = 0; i < 10000; ++i) {
    std::string n = original + "-clone" + (i == 0 ? "" : std::to_string(i));
    BERTH_TRY(bool taken, db.name_taken(n));
    if (!taken) {
      return n;
    }
  }
  return fail(Errc::Conflict, "no free name for a clone of " + original + " (give one)");
}

Result<int> run_clone(Context& ctx) {
  BERTH_TRY(auto* eng, ctx.engine());
  BERTH_TRY(auto db, bc::ContainerDb::open(eng->graphroot(), true));
  BERTH_TRY(auto rec, db->lookup(ctx.args[0]));
  if (ctx.has("name") && ctx.args.size() > 1) {
    return fail(Errc::InvalidArgument, "give the clone's name once: as --name or as NAME");
  }

  if (ctx.flag("destroy") && !ctx.flag("force")) {
    // Refused before the clone is made, so a refusal leaves nothing behind.
    const auto st = bc::read_state(eng->runroot(), rec);
    if (st.status == bc::Status::Running || st.status == bc::Status::Paused) {
      return fail(Errc::Conflict, "cannot destroy container " + rec.name + " as it is " +
                                      bc::status_name(st.status) +
                                      ": stop it first or add --force");
    }
  }
  if (ctx.has("force") && ctx.flag("force") && !ctx.flag("destroy")) {
    return fail(Errc::InvalidArgument, "--force can only be used with --destroy");
  }

  bc::CreateOptions o = rec.options;
  // What create filled in for the original is made afresh for the clone.
  if (o.hostname == rec.id.substr(0, 12)) {
    o.hostname.clear();
  }
  if (ctx.has("name")) {
    o.name = ctx.str("name");
  } else if (ctx.args.size() > 1) {
    o.name = ctx.args[1];
  } else {
    BERTH_TRY(o.name, clone_name(*db, rec.name));
  }
  if (ctx.args.size() > 2) {
    o.image = ctx.args[2];
  }
  o.create_command = {"berth", "container", "clone"};
  for (const auto& a : ctx.args) {
    o.create_command.push_back(a);
  }

  auto made = bc::create(*eng, o, false);
  if (!made) {
    return fail(std::move(made).error().wrap("clone container " + rec.name));
  }
  for (const auto& w : made->warnings) {
    ctx.err << "WARNING: " << w << "\n";
  }
  if (ctx.flag("destroy")) {
    bc::RemoveOptions ro;
    ro.force = ctx.flag("force");
    auto r = bc::remove(*eng, rec.id, ro);
    if (!r) {
      return fail(std::move(r).error().wrap("clone " + made->id.substr(0, 12) +
                                            " made; remove the original " + rec.name +
                                            " (stop it first or add --force)"));
    }
  }
  if (ctx.flag("run")) {
    auto r = bc::start(*eng, made->id);
    if (!r) {
      return fail(std::move(r).error().wrap("start the clone " + o.name));
    }
  }
  ctx.out << made->id << "\n";
  return 0;
}

const Registrar reg([] {
  register_command(
      "container",
      make_command(
          "clone", "Clone an existing container", "[options] CONTAINER [NAME] [IMAGE]", 1, 3,
          [](po::options_description& d) {
            d.add_options()("name", po::value<std::string>(),
                            "Name of the new container (default: CONTAINER-clone)")(
                "destroy", po::bool_switch(), "Remove the original container after cloning")(
                "force,f", po::bool_switch(),
                "With --destroy: remove the original even when it runs")(
                "run", po::bool_switch(), "Start the clone after creating it");
          },
          run_clone));
});

}  // namespace
}  // namespace berth::cli
