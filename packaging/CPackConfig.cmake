# `make package`: a Debian package with both programs, the recipes, a desktop entry and an icon.
set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "graftlab")
set(CPACK_PACKAGE_VENDOR "GraftLab")
set(CPACK_PACKAGE_CONTACT "GraftLab developers <graftlab@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Self-supervised ViT pretraining lab (MAE, MoCo v3, layer grafting, ConMIM)")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION "science")
# Shared-library dependencies (LibTorch, Qt, QCustomPlot, OpenCV, spdlog, ...) are computed by dpkg-shlibdeps;
# the packages of packaging/debian-packages.txt that are loaded at run time without being linked are added here.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libopenblas0-pthread")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "dataset-fashion-mnist")
include(CPack)
