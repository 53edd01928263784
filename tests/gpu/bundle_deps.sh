#!/usr/bin/env bash
# What the GPU machine lacks, gathered from this Debian machine into .gpu-deps (carry it to the device:
#   run(command="bash tests/gpu/run_on_device.sh", carry=[".gpu-deps"])):
#  - include/: the header-only dependencies (spdlog, fmt, nlohmann/json, zlib headers) and gloo's headers
#    (torch/csrc/distributed/c10d/ProcessGroupGloo.hpp includes gloo/algorithm.h, which pip's torch does not ship);
#  - debs/: Debian's Qt 6 (Core, Gui, Widgets, Test, PrintSupport, Svg, the offscreen platform plugin), QCustomPlot
#    and the libraries they load, as the .deb files apt downloads (compressed: about 30 MB of the 64 MiB a device
#    call may carry); run_on_device.sh unpacks them under .gpu-deps/root with dpkg -x and builds the GUI against it.
# Needs apt access (Debian's mirrors); everything comes from packaging/debian-packages.txt's packages and their
# run-time libraries.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dest="$root/.gpu-deps"
rm -rf "$dest"
mkdir -p "$dest/include" "$dest/debs"
for d in spdlog fmt nlohmann gloo; do cp -r "/usr/include/$d" "$dest/include/"; done
cp /usr/include/zlib.h /usr/include/zconf.h "$dest/include/"

# Qt 6 for the GUI check: the -dev packages the build needs, the libraries Qt loads that a plain CUDA machine may
# lack (ICU, glib, fontconfig, X/GL client libraries, a font for the offscreen renderer)
qt=(qt6-base-dev qt6-base-dev-tools qmake6 qmake6-bin qt6-svg-dev libqcustomplot-dev libqcustomplot2.1-qt6 qt6-qpa-plugins
    libqt6core6 libqt6gui6 libqt6widgets6 libqt6test6 libqt6printsupport6 libqt6svg6 libqt6opengl6 libqt6dbus6
    libqt6network6 libqt6concurrent6 libqt6sql6 libqt6xml6 libqt6opengl6-dev
    libicu72 libdouble-conversion3 libpcre2-16-0 libb2-1 libmd4c0 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libfreetype6
    libharfbuzz0b libgraphite2-3 libpng16-16 libglib2.0-0 libbrotli1 libdbus-1-3 libexpat1 libbsd0 libmd0
    libegl1 libgl1 libopengl0 libglvnd0 libglx0 libgl-dev libegl-dev libglx-dev libopengl-dev libvulkan-dev
    libx11-6 libx11-xcb1 libxcb1 libxau6 libxdmcp6 libxcb-xkb1 libxcb-glx0 libxext6 libxrender1
    fontconfig-config fonts-dejavu-core libts0 libmtdev1 libinput10 libevdev2 libwacom9 libgudev-1.0-0 libudev1)
(cd "$dest/debs" && apt-get download "${qt[@]}" > /dev/null 2> apt.err) || { cat "$dest/debs/apt.err"; exit 1; }
rm -f "$dest/debs/apt.err"
echo "bundle_deps: $(ls "$dest/debs" | wc -l) packages, $(du -sh "$dest" | cut -f1) in $dest"
