import numpy as np

from datasets.feature_spec import IntentHead
from model import reference


def test_markov_predicts_the_training_transition_and_falls_back_to_the_majority():
    head = IntentHead("action_type", "single", 6)
    # Training: 2 -> 2 (persistence), 3 -> 4 (a funnel step); 2 is the majority next value.
    train_x = {"action_type": np.array([[2, 2, 2, 3], [2, 2, 3, 0]])}
    train_y = {"action_type": np.array([[2, 2, 3, 4], [2, 3, 4, 0]]),
               "weight": np.array([[1, 1, 1, 1], [1, 1, 1, 0]], "float32")}
    # Evaluation: current 2, 3 and 5 (never seen as a current value in training).
    x = {"action_type": np.array([[0, 2], [0, 3], [0, 5]])}
    y = {"action_type": np.array([[0, 2], [0, 4], [0, 2]]), "item": np.zeros((3, 2))}
    got = reference.markov(train_x, train_y, x, y, [head])
    assert got == {"intent_accuracy/action_type": 1.0}
    majority = reference.majority(train_y, y, [head])["intent_accuracy/action_type"]
    assert abs(majority - 2 / 3) < 1e-9


def test_markov_multi_label_and_heads_without_an_input():
    genre = IntentHead("genre", "multi", 5)
    other = IntentHead("mood", "single", 4)
    eye = np.eye(5, dtype="float32")
    # Genre 2 is followed by genre 3, genre 4 by genre 4.
    train_x = {"genre": np.stack([eye[[2, 4, 2]]])}
    train_y = {"genre": np.stack([eye[[3, 4, 3]]]), "mood": np.zeros((1, 3)), "weight": np.ones((1, 3), "float32")}
    x = {"genre": np.stack([eye[[0, 2]], eye[[0, 4]]])}
    y = {"genre": np.stack([eye[[0, 3]], eye[[0, 3]]]), "mood": np.zeros((2, 2))}
    got = reference.markov(train_x, train_y, x, y, [genre, other])
    assert got == {"intent_accuracy/genre": 0.5}
