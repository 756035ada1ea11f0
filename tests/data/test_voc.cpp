// Pascal VOC folders read into detection tables (src/data/image/voc.cpp): the
// classes from labels.txt or a scan of the annotations, boxes moved to 0-based
// pixels as AutoMM moves them, bad boxes counted in warnings, split files, and
// every bad file an error naming it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "automm/log.h"
#include "automm/table.h"
#include "data/image/coco.h"
#include "data/image/image.h"
#include "data/image/image_io.h"
#include "data/image/voc.h"
#include "test_util.h"

namespace automm {
namespace {

namespace fs = std::filesystem;
using testing::Contains;
using testing::error_of;
using testing::TempDir;

class WarningSink : public LogSink {
 public:
  void message(LogLevel level, const std::string& text) override {
    if (level == LogLevel::kWarning) text_ += text + "\n";
  }
  void progress(const TrainingProgress&) override {}
  std::string text_;
};

struct SinkScope {
  explicit SinkScope(std::shared_ptr<LogSink> sink) { set_log_sink(std::move(sink)); }
  ~SinkScope() { set_log_sink(nullptr); }
};

struct VocObject {
  std::string name;
  double xmin, ymin, xmax, ymax;
  bool difficult = false;
};

// <root>/Annotations/<id>.xml for a width x height image, and its image file.
void write_image(const fs::path& root, const std::string& id, int width, int height,
                 const std::vector<VocObject>& objects, const std::string& filename = "") {
  fs::create_directories(root / "Annotations");
  fs::create_directories(root / "JPEGImages");
  const std::string file = filename.empty() ? id + ".jpg" : filename;
  Image image(width, height);
  std::ofstream(root / "JPEGImages" / file, std::ios::binary) << encode_png(image.pixels.data(), width, height, 3);
  std::ofstream xml(root / "Annotations" / (id + ".xml"));
  xml << "<annotation>\n  <folder>VOC2007</folder>\n  <filename>" << file << "</filename>\n  <size><width>" << width
      << "</width><height>" << height << "</height><depth>3</depth></size>\n";
  for (const VocObject& o : objects)
    xml << "  <object><name>" << o.name << "</name><pose>Left</pose><difficult>" << (o.difficult ? 1 : 0)
        << "</difficult><bndbox><xmin>" << o.xmin << "</xmin><ymin>" << o.ymin << "</ymin><xmax>" << o.xmax
        << "</xmax><ymax>" << o.ymax << "</ymax></bndbox></object>\n";
  xml << "</annotation>\n";
}

// Three images: b.jpg (a difficult dog, a box reaching out of the image),
// a.jpg (a cat, a box with xmin > xmax), c.jpg (only a box outside the image).
fs::path write_voc(const TempDir& dir) {
  const fs::path root = dir.path() / "VOC2007";
  write_image(root, "b", 40, 30, {{"Dog", 11, 6, 21, 16, true}, {"cat", 31, 21, 50, 40}});
  write_image(root, "a", 20, 10, {{" CAT ", 1, 1, 20, 10}, {"dog", 9, 2, 5, 8}});
  write_image(root, "c", 20, 10, {{"dog", 40, 2, 50, 8}});
  fs::create_directories(root / "ImageSets" / "Main");
  std::ofstream(root / "ImageSets" / "Main" / "train.txt") << "b\n\na  1\n";
  return root;
}

std::vector<LabeledBox> rois_of(const Table& table, size_t row) {
  return parse_rois(table.column(kRoisColumn).text(row), "row " + std::to_string(row));
}

TEST(VocTable, ReadsRootWithScannedClassesAndAutoMMsBoxes) {
  TempDir dir;
  const fs::path root = write_voc(dir);
  auto sink = std::make_shared<WarningSink>();
  const SinkScope scope(sink);
  EXPECT_TRUE(is_voc_path(root.string()));
  const Table table = read_table(root.string());  // read_table recognises VOC folders
  EXPECT_EQ(table.source, root.string());
  const std::vector<std::string> columns = {"image", "image_id", "width", "height", "rois", "coco_gt",
                                            "coco_categories"};
  for (const auto& c : columns) EXPECT_TRUE(table.has_column(c)) << c;
  // c has no valid box and is left out; rows sorted by image path.
  ASSERT_EQ(table.num_rows(), 2u);
  EXPECT_EQ(table.column("image").text(0), fs::weakly_canonical(root / "JPEGImages/a.jpg").string());
  EXPECT_EQ(table.column("image").text(1), fs::weakly_canonical(root / "JPEGImages/b.jpg").string());
  EXPECT_EQ(table.column(kCocoImageIdColumn).text(1), "1");
  EXPECT_EQ(table.column("width").text(1), "40");
  EXPECT_EQ(table.column("height").text(0), "10");
  // Classes: every name, stripped, lower-cased, sorted; ids 1..K.
  const auto categories = parse_coco_categories(table.column(kCocoCategoriesColumn).text(0), "t");
  ASSERT_EQ(categories.size(), 2u);
  EXPECT_EQ(categories[0], std::make_pair(int64_t{1}, std::string("cat")));
  EXPECT_EQ(categories[1], std::make_pair(int64_t{2}, std::string("dog")));
  // a: [1,1,20,10] -> [0,0,19,9]; the inverted box is dropped.
  const auto a = rois_of(table, 0);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_DOUBLE_EQ(a[0].x1, 0.0);
  EXPECT_DOUBLE_EQ(a[0].y1, 0.0);
  EXPECT_DOUBLE_EQ(a[0].x2, 19.0);
  EXPECT_DOUBLE_EQ(a[0].y2, 9.0);
  EXPECT_EQ(a[0].label, 0);
  // b: the difficult dog is an ordinary box; [31,21,50,40] -> [30,20,40,30] clipped to 40 x 30.
  const auto b = rois_of(table, 1);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_DOUBLE_EQ(b[0].x1, 10.0);
  EXPECT_DOUBLE_EQ(b[0].y1, 5.0);
  EXPECT_DOUBLE_EQ(b[0].x2, 20.0);
  EXPECT_DOUBLE_EQ(b[0].y2, 15.0);
  EXPECT_EQ(b[0].label, 1);
  EXPECT_DOUBLE_EQ(b[1].x1, 30.0);
  EXPECT_DOUBLE_EQ(b[1].x2, 40.0);
  EXPECT_DOUBLE_EQ(b[1].y2, 30.0);
  // coco_gt: the kept boxes as [id, class, x, y, w, h, w * h, 0], ids unique over the table.
  const auto gt = parse_coco_gt(table.column(kCocoGtColumn).text(1), "row 1");
  ASSERT_EQ(gt.size(), 2u);
  EXPECT_EQ(gt[0].id, 2);
  EXPECT_EQ(gt[0].label, 1);
  EXPECT_DOUBLE_EQ(gt[0].x, 10.0);
  EXPECT_DOUBLE_EQ(gt[0].w, 10.0);
  EXPECT_DOUBLE_EQ(gt[0].area, 100.0);
  EXPECT_FALSE(gt[0].iscrowd);  // difficult objects count in evaluation, as in AutoMM
  EXPECT_DOUBLE_EQ(gt[1].area, 100.0);
  EXPECT_TRUE(Contains(sink->text_, "1 boxes reach outside their image")) << sink->text_;
  EXPECT_TRUE(Contains(sink->text_, "2 boxes are empty or outside their image")) << sink->text_;
  EXPECT_TRUE(Contains(sink->text_, "object 1 ('dog') of " + (root / "Annotations/a.xml").string())) << sink->text_;
  EXPECT_TRUE(Contains(sink->text_, "1 of 3 images have no valid box")) << sink->text_;
}

TEST(VocTable, SplitFilesAndLabelsTxt) {
  TempDir dir;
  const SinkScope quiet(std::make_shared<WarningSink>());
  const fs::path root = write_voc(dir);
  const std::string split = (root / "ImageSets/Main/train.txt").string();
  EXPECT_TRUE(is_voc_path(split));
  EXPECT_FALSE(is_voc_path((root / "labels.txt").string()));
  EXPECT_FALSE(is_voc_path(dir.path().string()));
  Table table = read_table(split);  // a .txt split file is not refused as an unknown table file
  ASSERT_EQ(table.num_rows(), 2u);
  EXPECT_EQ(table.source, split);
  std::ofstream(root / "ImageSets/Main/val.txt") << "b\n";
  table = read_voc_table((root / "ImageSets/Main/val.txt").string());
  ASSERT_EQ(table.num_rows(), 1u);
  EXPECT_EQ(table.column("image").text(0), fs::weakly_canonical(root / "JPEGImages/b.jpg").string());
  // labels.txt sets the classes and their order, lower-cased; scanning is not done.
  std::ofstream(root / "labels.txt") << "Dog\ncat\nbird\n";
  table = read_voc_table(root.string());
  const auto categories = parse_coco_categories(table.column(kCocoCategoriesColumn).text(0), "t");
  ASSERT_EQ(categories.size(), 3u);
  EXPECT_EQ(categories[0].second, "dog");
  EXPECT_EQ(categories[2], std::make_pair(int64_t{3}, std::string("bird")));
  EXPECT_EQ(rois_of(table, 0)[0].label, 1);  // a's cat
  EXPECT_EQ(rois_of(table, 1)[0].label, 0);  // b's dog
  // A filename without an extension is a .jpg; a file from the listing without an xml is an error.
  write_image(root, "d", 20, 10, {{"bird", 2, 2, 8, 8}}, "d.jpg");
  std::string xml;
  std::getline(std::ifstream(root / "Annotations/d.xml"), xml, '\0');
  std::ofstream(root / "Annotations/d.xml") << std::string(xml).replace(xml.find("d.jpg"), 5, "d");
  table = read_voc_table(root.string());
  ASSERT_EQ(table.num_rows(), 3u);
  EXPECT_EQ(rois_of(table, 2)[0].label, 2);
  fs::remove(root / "Annotations/d.xml");
  EXPECT_TRUE(Contains(error_of([&] { read_voc_table(root.string()); }), "image 'd' has no annotation file"));
}

TEST(VocTable, BadFilesAreErrorsNamingThem) {
  TempDir dir;
  const SinkScope quiet(std::make_shared<WarningSink>());
  const fs::path root = write_voc(dir);
  const std::string a = (root / "Annotations/a.xml").string();
  const auto error = [&] { return error_of([&] { read_voc_table(root.string()); }); };
  // An object name labels.txt lacks.
  std::ofstream(root / "labels.txt") << "cat\n";
  std::string e = error();
  EXPECT_TRUE(Contains(e, a + ": object 1 is a 'dog'") && Contains(e, "labels.txt lacks")) << e;
  fs::remove(root / "labels.txt");
  // A missing image.
  fs::remove(root / "JPEGImages/a.jpg");
  std::ofstream(root / "JPEGImages/a.png") << "x";
  e = error();
  EXPECT_TRUE(Contains(e, a + ": its image") && Contains(e, "a.jpg is missing")) << e;
  // No <size>.
  write_image(root, "a", 20, 10, {{"cat", 1, 1, 5, 5}});
  std::ofstream(a) << "<annotation><filename>a.jpg</filename><object><name>cat</name></object></annotation>";
  EXPECT_TRUE(Contains(error(), a + " has no <size>")) << error();
  // Not XML.
  std::ofstream(a) << "<annotation><size>";
  EXPECT_TRUE(Contains(error(), "cannot read the VOC annotation " + a)) << error();
  // A coordinate that is not a number.
  write_image(root, "a", 20, 10, {{"cat", 1, 1, 5, 5}});
  std::string xml;
  std::getline(std::ifstream(a), xml, '\0');
  std::ofstream(a) << xml.replace(xml.find("<xmax>5"), 7, "<xmax>five");
  EXPECT_TRUE(Contains(error(), a + ": object 0 <bndbox>: <xmax> must be a number")) << error();
  // The control: the same file with a number reads.
  write_image(root, "a", 20, 10, {{"cat", 1, 1, 5, 5}});
  EXPECT_EQ(read_voc_table(root.string()).num_rows(), 2u);
  EXPECT_TRUE(Contains(error_of([&] { read_voc_table(dir.path().string()); }), "is not a VOC folder: it needs"));
  EXPECT_TRUE(Contains(error_of([&] { read_voc_table(a); }), "is neither a VOC folder"));
}

}  // namespace
}  // namespace automm
