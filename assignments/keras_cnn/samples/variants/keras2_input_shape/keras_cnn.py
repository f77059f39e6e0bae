# CNN 作业: the lecture's model written with model.add and input_shape= (Keras 2 style)
import numpy as np
from tensorflow import keras
from tensorflow.keras import layers, models


def preprocess(images, labels):
    x = np.expand_dims(images, -1).astype('float32') / 255.
    y = keras.utils.to_categorical(labels, num_classes=10).astype('float32')
    return x, y


def build_cnn():
    model = models.Sequential()
    model.add(layers.Conv2D(8, (5, 5), padding='same', activation='relu',
                            input_shape=(28, 28, 1)))
    model.add(layers.MaxPool2D(2))
    model.add(layers.Conv2D(16, (5, 5), padding='same', activation='relu'))
    model.add(layers.MaxPool2D(2))
    model.add(layers.Flatten())
    model.add(layers.Dense(100, activation='relu'))
    model.add(layers.Dropout(0.25))
    model.add(layers.Dense(10, activation='softmax'))
    model.compile(optimizer=keras.optimizers.Adam(),
                  loss=keras.losses.categorical_crossentropy,  # the loss function itself
                  metrics=['acc'])
    return model


if __name__ == '__main__':
    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    x_train, y_train = preprocess(x_train, y_train)
    model = build_cnn()
    model.summary()
    model.fit(x_train, y_train, batch_size=128, epochs=10, validation_split=0.2)
