// Fits and predicts through the installed public headers only.
#include <iostream>

#include "automm/predictor.h"
#include "automm/table.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: consumer TABLE.csv PREDICTOR_DIR\n";
    return 2;
  }
  const automm::Table table = automm::read_table(argv[1]);
  automm::PredictorOptions options;
  options.label = "label";
  options.path = argv[2];
  options.verbose = false;
  options.hyperparameters = {{"optim.max_epochs", 1}};
  automm::MultiModalPredictor predictor(options);
  predictor.fit(table);
  const automm::Predictions predictions = predictor.predict(table);
  std::cout << "problem type " << predictor.problem_type() << ", " << predictions.size() << " predictions, first "
            << predictions.text(0) << "\n";
  return predictions.size() == table.num_rows() ? 0 : 1;
}
