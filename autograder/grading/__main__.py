import sys

from autograder.grading import main

sys.exit(main(sys.argv[1:]))
