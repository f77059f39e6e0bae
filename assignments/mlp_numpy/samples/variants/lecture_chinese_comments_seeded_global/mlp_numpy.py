"""A correct mlp_numpy as a student copies it from the lecture's slides: the slide's classes
with their Chinese comments, np.random.seed and the global generator, the Softmax Jacobian
simplified by hand, np.clip-free log(p + 1e-12), a while loop over batches,
copy.deepcopy of the best model, and a computeAccuracy that counts then divides."""

import copy

import numpy as np


class FullConnectionLayer():
    def __init__(self):  # 用于初始化类实例
        self.mem = {}  # 定义在实例化对象中, 以便类全局使用

    def forward(self, X, W):  # 前向传播, X为输入数据, W为网络的连接权重矩阵
        self.mem["X"] = X  # 接收输入数据
        self.mem["W"] = W  # 接收网络参数
        H = np.matmul(X, W)  # 计算网络输出
        return H

    def backward(self, grad_H):  # 反向传播, grad_H为损失函数关于H的梯度
        X = self.mem["X"]  # 输入数据
        W = self.mem["W"]
        grad_X = np.matmul(grad_H, W.T)  # 损失函数关于X的梯度
        grad_W = np.matmul(X.T, grad_H)  # 损失函数关于W的梯度
        return grad_X, grad_W


class Relu():
    def __init__(self):
        self.mem = {}

    def forward(self, x):
        self.mem["x"] = x
        return np.where(x > 0, x, np.zeros_like(x))  # 小于0的部分置0

    def backward(self, grad_y):
        x = self.mem["x"]
        return (x > 0).astype(np.float64) * grad_y  # x > 0 处导数为1, 其余为0


class Softmax():
    def __init__(self):
        self.mem = {}
        self.epsilon = 1e-12  # 防止求导后分母为0

    def forward(self, x):
        x_exp = np.exp(x - np.max(x, axis=1, keepdims=True))  # 减去最大值, 防止溢出
        partition = np.sum(x_exp, axis=1, keepdims=True)
        out = x_exp / (partition + self.epsilon)
        self.mem["out"] = out
        return out

    def backward(self, grad_y):
        s = self.mem["out"]
        # 雅可比矩阵 diag(s) - s s^T 乘以 grad_y, 化简后: s * (grad_y - sum(grad_y * s))
        return s * (grad_y - np.sum(grad_y * s, axis=1, keepdims=True))


class CrossEntropy():
    def __init__(self):
        self.mem = {}
        self.epsilon = 1e-12  # 防止 log(0)

    def forward(self, p, y):
        self.mem["p"] = p
        log_p = np.log(p + self.epsilon)
        return np.mean(np.sum(-y * log_p, axis=1))  # 批量的平均交叉熵

    def backward(self, y):
        p = self.mem["p"]
        return -y * (1 / (p + self.epsilon)) / p.shape[0]


class FullConnectionModel():  # 全连接神经网络模型类
    def __init__(self, latent_dims):  # 构造函数
        self.W1 = np.random.normal(loc=0, scale=1, size=[28 * 28 + 1, latent_dims]) / np.sqrt(
            (28 * 28 + 1) / 2)  # 初始化W1
        self.W2 = np.random.normal(loc=0, scale=1, size=[latent_dims, 10]) / np.sqrt(
            latent_dims / 2)  # He 初始化W2
        self.mul_h1 = FullConnectionLayer()  # 隐含层
        self.relu = Relu()  # 激活函数
        self.mul_h2 = FullConnectionLayer()  # 输出层
        self.softmax = Softmax()  # 激活函数
        self.cross_en = CrossEntropy()  # 损失函数

    def forward(self, X, labels):  # 前向传播
        bias = np.ones(shape=[X.shape[0], 1])  # 生成权值均为1的矩阵作为偏置
        X = np.concatenate([X, bias], axis=1)  # 合并矩阵
        self.h1 = self.mul_h1.forward(X, self.W1)  # 隐含层的计算
        self.h1_relu = self.relu.forward(self.h1)  # 经过隐含层激活函数处理
        self.h2 = self.mul_h2.forward(self.h1_relu, self.W2)  # 输出层的计算
        self.h2_soft = self.softmax.forward(self.h2)  # 经过输出层激活函数处理
        self.loss = self.cross_en.forward(self.h2_soft, labels)  # 计算交叉熵损失函数

    def backward(self, labels):  # 反向传播
        self.loss_grad = self.cross_en.backward(labels)  # 计算损失函数在输出层的梯度
        self.h2_soft_grad = self.softmax.backward(self.loss_grad)  # 对softmax求导
        self.h2_grad, self.W2_grad = self.mul_h2.backward(self.h2_soft_grad)  # 求导
        self.h1_relu_grad = self.relu.backward(self.h2_grad)  # 对relu求导
        self.h1_grad, self.W1_grad = self.mul_h1.backward(self.h1_relu_grad)  # 隐含层的梯度


def computeAccuracy(prob, labels):  # 计算准确率
    predictions = np.argmax(prob, axis=1)
    truth = np.argmax(labels, axis=1)
    correct = np.sum(predictions == truth)  # 预测正确的个数
    return correct / labels.shape[0]


def preprocess(images, labels):  # 数据预处理: 展平, 归一化, 独热编码
    x = images.reshape(images.shape[0], -1) / 255.0
    y = np.zeros((labels.shape[0], 10))
    y[np.arange(labels.shape[0]), labels] = 1
    return x, y


def train_one_step(model, x, y, learning_rate):  # 单步训练
    model.forward(x, y)
    model.backward(y)
    model.W1 = model.W1 - learning_rate * model.W1_grad  # 更新参数
    model.W2 = model.W2 - learning_rate * model.W2_grad
    loss = model.loss
    accuracy = computeAccuracy(model.h2_soft, y)
    return loss, accuracy


def train(x_train, y_train, x_validation, y_validation, latent_dims=(100, 200, 300),
          epochs=20, batch_size=100, learning_rate=0.1, seed=0, verbose=True):  # 批量训练
    best_accuracy = 0
    best_model = None
    for dims in latent_dims:
        np.random.seed(seed)  # 每个参数从相同的随机种子开始
        model = FullConnectionModel(dims)
        for epoch in range(epochs):
            order = np.random.permutation(x_train.shape[0])  # 打乱训练数据
            start = 0
            while start < x_train.shape[0]:
                batch = order[start:start + batch_size]
                loss, accuracy = train_one_step(model, x_train[batch], y_train[batch],
                                                learning_rate)
                start += batch_size
        accuracy = test(model, x_validation, y_validation)  # 在验证集上测试
        if verbose:
            print("Parameter latent_dims=%d, validation_accuracy=%f." % (dims, accuracy))
        if best_model is None or accuracy > best_accuracy:
            best_accuracy = accuracy
            best_model = copy.deepcopy(model)  # 保存最好的模型
    return best_model


def test(model, x, y):  # 测试函数
    model.forward(x, y)  # 运行模型
    accuracy = computeAccuracy(model.h2_soft, y)  # 获取准确率
    return accuracy
