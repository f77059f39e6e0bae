# 第二次作业: Keras 全连接网络 (Keras 2 habits that still work in Keras 3)
import numpy as np
from tensorflow import keras
from tensorflow.keras.layers import Dense, Input
from tensorflow.keras.models import Sequential
from tensorflow.keras.utils import to_categorical


def preprocess(images, labels):
    x = images.reshape(images.shape[0], 28 * 28).astype('float32')
    x /= 255
    y = to_categorical(labels, 10).astype('float32')
    return x, y


def build_sequential_mlp():
    model = Sequential()
    model.add(Input(shape=(784,)))
    model.add(Dense(512, activation='relu'))
    model.add(Dense(10, activation='softmax'))
    # the loss class itself, as in many Keras 2 tutorials; 'acc' inside a list
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1),
                  loss=keras.losses.MeanSquaredError, metrics=['acc'])
    return model


def build_functional_mlp():
    inputs = Input(shape=(784,))
    h1 = Dense(64, activation='relu')(inputs)
    h2 = Dense(64, activation='relu')(h1)
    outputs = Dense(10, activation='softmax')(h2)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer='rmsprop', loss='categorical_crossentropy', metrics=['acc'])
    return model


(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
x_train, y_train = preprocess(x_train, y_train)
model = build_sequential_mlp()
model.fit(x_train, y_train, batch_size=512, epochs=50, validation_split=0.1)
