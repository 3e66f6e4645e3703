"""Japanese training text for the tiny tokenizer, written by the project and generated
deterministically (no downloaded text).

It mixes templated sentences over small word lists with the scripts a Japanese tokenizer
must meet: kanji, hiragana, katakana, full-width and half-width digits and letters,
half-width katakana, Japanese punctuation, ASCII spaces (so "▁" gets a piece of its own)
and compound words made of common kanji (so a unigram model can reach a few thousand pieces).
"""

from __future__ import annotations

import random

CORPUS_VERSION = 1

PEOPLE = ["私", "彼", "彼女", "先生", "学生", "母", "父", "兄", "姉", "友達", "医者", "店員", "子供", "祖母", "社長"]
PLACES = ["東京", "大阪", "京都", "北海道", "沖縄", "名古屋", "福岡", "横浜", "学校", "図書館", "駅", "病院",
          "公園", "会社", "空港", "海", "山", "川", "神社", "お寺", "市場", "台所", "銀行", "美術館"]
THINGS = ["本", "新聞", "手紙", "写真", "映画", "音楽", "料理", "お茶", "コーヒー", "ご飯", "パン", "果物", "野菜",
          "魚", "肉", "傘", "鞄", "時計", "電話", "パソコン", "自転車", "車", "電車", "飛行機", "切符", "地図",
          "辞書", "鉛筆", "消しゴム", "机", "椅子", "窓", "扉", "花", "木", "猫", "犬", "鳥", "雨", "雪", "風"]
ADJECTIVES = ["大きい", "小さい", "新しい", "古い", "高い", "安い", "美しい", "面白い", "難しい", "易しい",
              "暑い", "寒い", "長い", "短い", "静かな", "便利な", "有名な", "大切な", "きれいな", "元気な"]
VERBS = [("読み", "読む", "読んだ"), ("書き", "書く", "書いた"), ("見", "見る", "見た"), ("買い", "買う", "買った"),
         ("食べ", "食べる", "食べた"), ("飲み", "飲む", "飲んだ"), ("作り", "作る", "作った"),
         ("使い", "使う", "使った"), ("探し", "探す", "探した"), ("送り", "送る", "送った"),
         ("届け", "届ける", "届けた"), ("選び", "選ぶ", "選んだ"), ("考え", "考える", "考えた")]
TIMES = ["昨日", "今日", "明日", "毎朝", "週末", "去年", "来月", "夕方", "夜", "午前中", "春", "夏", "秋", "冬"]
KATAKANA = ["テスト", "データ", "モデル", "システム", "ユーザー", "サーバー", "ネットワーク", "プログラム",
            "アルゴリズム", "インターネット", "スマートフォン", "レストラン", "ホテル", "スポーツ", "アニメ"]
HALF_KATAKANA = ["ｶﾀｶﾅ", "ﾃｽﾄ", "ﾃﾞｰﾀ", "ｱｲｳｴｵ", "ﾗｰﾒﾝ", "ｺｰﾋｰ"]
ASCII_WORDS = ["AI", "GPU", "CPU", "JGLUE", "LoRA", "model", "test", "data", "Python", "token", "score"]
QUESTION_FRAMES = ["{x}は何ですか？", "{x}はどこにありますか？", "{x}を何という？", "{x}に必要なものは何？",
                   "{x}はいつ使いますか？", "なぜ{x}が好きなのですか？"]
# Common kanji for compound nouns (常用漢字 from the first rows of the JIS order).
KANJI = ("日一国会人年大十二本中長出三同時政事自行社見月分議後前民生連五発間対上部東者党地合市業内相方四"
         "定今回新場金員九入選立開手米力学問高代明実円関決子動京全目表戦経通外最言氏現理調体化田当八六"
         "約主題下首意法不来作性的要用制治度務強気小七成期公持野協取都和統以機平総加山思家話世受区領多"
         "県続進正安設保改数記院女初北午指権心界支第産結百派点教報済書府活原先共得解名交資予川向際査勝"
         "面委告軍文反元重近千考判認画海参売利組知案道信策集在件団別物側任引使求所次水半品昨論計死官増"
         "係感特情投示変打男基私各始島直両朝革価式確村提運終挙果西勢減台広容必応演電歳住争談能無再位置")


def _compound(rnd: random.Random) -> str:
    return "".join(rnd.choice(KANJI) for _ in range(rnd.choice((2, 2, 3, 4))))


def _number(rnd: random.Random) -> str:
    n = str(rnd.randint(0, 2026))
    if rnd.random() < 0.4:  # full-width digits, which an identity-normalising tokenizer must keep
        n = n.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    return n


def corpus_lines(n: int = 6000, seed: int = 0) -> list[str]:
    """``n`` lines of generated Japanese text; the same list for the same arguments."""
    rnd = random.Random(seed)
    lines = []
    for i in range(n):
        p, place, thing, thing2 = rnd.choice(PEOPLE), rnd.choice(PLACES), rnd.choice(THINGS), rnd.choice(THINGS)
        adj, (stem, plain, past), t = rnd.choice(ADJECTIVES), rnd.choice(VERBS), rnd.choice(TIMES)
        kind = i % 10
        if kind == 0:
            line = f"{t}、{p}は{place}で{adj}{thing}を{stem}ました。"
        elif kind == 1:
            line = f"「{thing}を{plain}のは{adj.removesuffix('な')}ですね」と{p}が言った。"
        elif kind == 2:
            line = rnd.choice(QUESTION_FRAMES).format(x=thing) + f"答え：{thing2}"
        elif kind == 3:
            line = f"{_compound(rnd)}の{_compound(rnd)}について、{_compound(rnd)}が{_compound(rnd)}を発表した。"
        elif kind == 4:
            line = f"{rnd.choice(KATAKANA)}の{rnd.choice(ASCII_WORDS)}を{_number(rnd)}回{past}（{rnd.choice(HALF_KATAKANA)}）。"
        elif kind == 5:
            # ASCII spaces, so that the word boundary "▁" becomes a piece of its own.
            line = f"{rnd.choice(ASCII_WORDS)} {rnd.choice(ASCII_WORDS)} と {thing} の {_number(rnd)} 件"
        elif kind == 6:
            choices = rnd.sample(THINGS, 5)
            line = "選択肢：" + "、".join(choices) + f"。{p}は{choices[rnd.randrange(5)]}を選んだ！"
        elif kind == 7:
            line = f"{place}から{rnd.choice(PLACES)}まで{rnd.choice(['電車', '車', '飛行機', '自転車'])}で{_number(rnd)}分かかる。"
        elif kind == 8:
            line = f"Ｑ．{thing}は{adj}ですか？　Ａ．はい、とても{adj}です。"
        else:
            line = f"{_compound(rnd)}{_compound(rnd)}、{_compound(rnd)}。{p}の{thing}は{place}にある。"
        lines.append(line)
    return lines
