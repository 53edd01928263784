#include "util/ImageIO.h"
#include "base/util/Errors.h"

#include <torch/torch.h>

#ifdef GRAFTLAB_HAVE_OPENCV
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

#include <sstream>

namespace graftlab {

#ifdef GRAFTLAB_HAVE_OPENCV
bool imageIoAvailable() { return true; }

void writeImage(const std::string& path, const torch::Tensor& rgbIn, const std::vector<std::string>& header,
                const std::vector<std::string>& columnTitles) {
    auto rgb = rgbIn.contiguous();
    const int h = int(rgb.size(0)), w = int(rgb.size(1));
    cv::Mat img(h, w, CV_8UC3, rgb.data_ptr<uint8_t>());
    cv::Mat bgr;
    cv::cvtColor(img, bgr, cv::COLOR_RGB2BGR);
    const int lineH = 18;
    const double fontScale = 0.42;
    // Wrap header lines by words to the image width, so nothing is cut off on narrow grids.
    std::vector<std::string> lines;
    for (const auto& text : header) {
        std::string current;
        std::istringstream words(text);
        std::string word;
        while (words >> word) {
            std::string candidate = current.empty() ? word : current + " " + word;
            int baseline = 0;
            if (!current.empty() && cv::getTextSize(candidate, cv::FONT_HERSHEY_SIMPLEX, fontScale, 1, &baseline).width > w - 8) {
                lines.push_back(current);
                current = word;
            } else {
                current = candidate;
            }
        }
        if (!current.empty()) lines.push_back(current);
    }
    int band = int(lines.size() + (columnTitles.empty() ? 0 : 1)) * lineH + (lines.empty() && columnTitles.empty() ? 0 : 6);
    cv::Mat out(h + band, std::max(w, 10), CV_8UC3, cv::Scalar(255, 255, 255));
    bgr.copyTo(out(cv::Rect(0, band, w, h)));
    int y = lineH - 4;
    for (const auto& line : lines) {
        cv::putText(out, line, {4, y}, cv::FONT_HERSHEY_SIMPLEX, fontScale, cv::Scalar(20, 20, 20), 1, cv::LINE_AA);
        y += lineH;
    }
    if (!columnTitles.empty()) {
        int colW = w / int(columnTitles.size());
        for (size_t c = 0; c < columnTitles.size(); ++c)
            cv::putText(out, columnTitles[c], {int(c) * colW + 4, y}, cv::FONT_HERSHEY_SIMPLEX, 0.42,
                        cv::Scalar(20, 20, 20), 1, cv::LINE_AA);
    }
    bool ok = false;
    try {
        ok = cv::imwrite(path, out);
    } catch (const cv::Exception& e) {
        throw FileError(path, std::string("cannot write image: ") + e.what());
    }
    if (!ok) throw FileError(path, "cannot write image (unknown extension or unwritable location)");
}
#else
bool imageIoAvailable() { return false; }
void writeImage(const std::string& path, const torch::Tensor&, const std::vector<std::string>&, const std::vector<std::string>&) {
    throw FileError(path, "this build has no image-file support (configured with GRAFTLAB_OPENCV=OFF)");
}
#endif

}  // namespace graftlab
