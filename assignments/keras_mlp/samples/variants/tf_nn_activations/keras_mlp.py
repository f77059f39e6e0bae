"""The lecture's two MLPs with tf.nn activations, a positional learning rate and metric
objects."""
import numpy as np
import tensorflow as tf
from tensorflow import keras


def preprocess(images, labels):
    x = np.reshape(images, (len(images), -1)) / np.float32(255)
    y = np.eye(10, dtype=np.float32)[np.asarray(labels)]
    return x.astype(np.float32), y


def build_sequential_mlp():
    model = keras.Sequential([
        keras.layers.InputLayer(shape=(784,)),
        keras.layers.Dense(512, activation=tf.nn.relu),
        keras.layers.Dense(10, activation=tf.nn.softmax),
    ])
    model.compile(keras.optimizers.SGD(0.1), loss="mean_squared_error",
                  metrics=[keras.metrics.CategoricalAccuracy()])
    return model


def build_functional_mlp():
    x = inputs = keras.Input((784,))
    for units in (64, 64):
        x = keras.layers.Dense(units, activation=tf.nn.relu)(x)
    outputs = keras.layers.Dense(10, activation=tf.nn.softmax)(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(optimizer=keras.optimizers.RMSprop(),
                  loss=keras.losses.CategoricalCrossentropy(), metrics=["accuracy"])
    return model
