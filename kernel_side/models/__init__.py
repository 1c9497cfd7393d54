"""What is explained or generates: invertible classifiers, plain classifiers, flows and generators."""
