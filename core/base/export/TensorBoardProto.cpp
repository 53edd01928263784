// The Event messages through protobuf (tensorboard.proto, compiled by protoc at build time).
#include "base/export/TensorBoard.h"

#include "tensorboard.pb.h"

#include <stdexcept>

namespace graftlab {

bool tensorBoardBuilt() { return true; }

std::string serializeEvent(const TensorBoardEvent& e) {
    tensorboard::Event ev;
    ev.set_wall_time(e.wallTime);
    ev.set_step(e.step);
    if (!e.fileVersion.empty()) {
        ev.set_file_version(e.fileVersion);
        return ev.SerializeAsString();
    }
    auto* summary = ev.mutable_summary();
    for (const auto& [tag, v] : e.scalars) {
        auto* val = summary->add_value();
        val->set_tag(tag);
        val->set_simple_value(v);
    }
    for (const auto& im : e.images) {
        auto* val = summary->add_value();
        val->set_tag(im.tag);
        auto* img = val->mutable_image();
        img->set_width(im.width);
        img->set_height(im.height);
        img->set_colorspace(im.channels);
        img->set_encoded_image_string(im.png);
    }
    for (const auto& [tag, text] : e.texts) {
        auto* val = summary->add_value();
        val->set_tag(tag);
        val->mutable_metadata()->mutable_plugin_data()->set_plugin_name("text");
        auto* t = val->mutable_tensor();
        t->set_dtype(7);  // DT_STRING
        t->mutable_tensor_shape()->add_dim()->set_size(1);
        t->add_string_val(text);
    }
    return ev.SerializeAsString();
}

TensorBoardEvent parseEvent(std::string_view bytes) {
    tensorboard::Event ev;
    if (!ev.ParseFromArray(bytes.data(), int(bytes.size()))) throw std::runtime_error("not a TensorBoard event record");
    TensorBoardEvent e;
    e.wallTime = ev.wall_time();
    e.step = ev.step();
    if (ev.has_file_version()) e.fileVersion = ev.file_version();
    if (ev.has_summary()) {
        for (const auto& val : ev.summary().value()) {
            if (val.has_image()) {
                const auto& img = val.image();
                e.images.push_back({val.tag(), img.width(), img.height(), img.colorspace(), img.encoded_image_string()});
            } else if (val.has_tensor()) {
                const auto& t = val.tensor();
                e.texts.emplace_back(val.tag(), t.string_val_size() ? t.string_val(0) : std::string());
            } else {
                e.scalars.emplace_back(val.tag(), val.simple_value());
            }
        }
    }
    return e;
}

}  // namespace graftlab
